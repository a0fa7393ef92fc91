"""Network shape rules (Eq. 12–15), position-keyed noise and block-wise generation (Sec. 3.4)."""

import numpy as np
import pytest
import torch

from swnn.generation import GenerationSettings, generate, iter_blocks
from swnn.model import NoiseSpec, TrainedModel
from swnn.network import SWNN, blocks_for_correlation_length
from swnn.noise import NoiseField


def test_receptive_field_and_shapes():
    net = SWNN(blocks=8, channels=24, noise_channels=3)
    assert net.receptive_field == 17 and net.halo == 8
    out = net(torch.randn(1, 3, 17, 20, 25))
    assert out.shape == (1, 1, 1, 4, 9)
    # 8 blocks of 24 channels, 3 noise channels: the authors' 111,361 parameters + the affine of one BatchNorm
    # placed after the last block A here (24 weights + 24 biases)
    assert net.n_parameters() == 111_361 + 48
    assert SWNN(3, blocks=2)(torch.randn(2, 3, 5, 5, 5)).shape == (2, 3, 1, 1, 1)


def _reach(net, side):
    """First and last noise index, per axis, that output voxel (1, 1, 1) of a side³ input depends on."""
    noise = torch.randn(1, 3, side, side, side, requires_grad=True)
    net(noise)[0, 0, 1, 1, 1].backward()
    reach = noise.grad.abs().sum(dim=(0, 1))
    touched = [
        np.flatnonzero(reach.sum(dim=tuple(a for a in range(3) if a != axis)).numpy()) for axis in range(3)
    ]
    return [(int(t.min()), int(t.max())) for t in touched]


def test_dilated_blocks_reach_their_receptive_field():
    # dilations 1, 2, 3: halo 6, receptive field 13 with the weights of three 3³ blocks
    torch.manual_seed(0)
    net = SWNN(blocks=3, channels=4, dilations=(1, 2, 3)).eval()
    assert net.halo == 6 and net.receptive_field == 13
    assert net.n_parameters() == SWNN(blocks=3, channels=4).n_parameters()
    assert net(torch.randn(1, 3, 13, 14, 20)).shape == (1, 1, 1, 2, 8)
    # the output voxel depends on noise exactly 6 voxels either side along each axis, not beyond
    assert _reach(net, 15) == [(1, 13)] * 3
    with pytest.raises(ValueError, match="dilations must be 3 integers"):
        SWNN(blocks=3, dilations=(1, 2))


def test_coarse_noise_is_the_cube_mean_beside_the_noise():
    # b = 5: halo 2 + 2 = 4, receptive field 2·2 + 5 = 9; the extra channels are the mean over 5³ cubes × 5^1.5
    torch.manual_seed(0)
    net = SWNN(blocks=2, channels=4, coarse=5).eval()
    assert net.halo == 4 and net.receptive_field == 9
    noise = torch.randn(1, 3, 11, 12, 13, dtype=torch.float64)
    both = net._with_coarse(noise)
    assert both.shape == (1, 6, 7, 8, 9)
    torch.testing.assert_close(both[:, :3], noise[:, :, 2:-2, 2:-2, 2:-2], rtol=0, atol=0)
    cube = noise[0, :, 1:6, 3:8, 0:5].mean(dim=(1, 2, 3)) * 5**1.5  # the cube centred on voxel (3, 5, 2)
    torch.testing.assert_close(both[0, 3:, 1, 3, 0], cube, rtol=1e-12, atol=1e-12)
    assert net(noise.float()).shape == (1, 1, 3, 4, 5)
    # the output voxel depends on noise exactly 4 voxels either side along each axis, not beyond
    assert _reach(net, 11) == [(1, 9)] * 3
    for bad in (1, 2, 4, -3, 7.0, "7"):
        with pytest.raises(ValueError, match="coarse must be 0"):
            SWNN(blocks=2, coarse=bad)


def test_coarse_noise_of_several_sides_reads_each_cube_mean():
    # b = 3 and 7: halo 2 + 3 = 5; the channels are the noise, its mean over 3³ and over 7³ cubes, each centred
    # on the output voxel's noise voxel and scaled to unit variance
    torch.manual_seed(0)
    net = SWNN(blocks=2, channels=4, coarse=(3, 7)).eval()
    assert net.halo == 5 and net.receptive_field == 11 and net.coarse == (3, 7)
    noise = torch.randn(1, 3, 13, 14, 15, dtype=torch.float64)
    views = net._with_coarse(noise)
    assert views.shape == (1, 9, 7, 8, 9)
    torch.testing.assert_close(views[:, :3], noise[:, :, 3:-3, 3:-3, 3:-3], rtol=0, atol=0)
    z, y, x = 4, 6, 1  # voxel (7, 9, 4) of the noise
    small = noise[0, :, 6:9, 8:11, 3:6].mean(dim=(1, 2, 3)) * 3**1.5
    large = noise[0, :, 4:11, 6:13, 1:8].mean(dim=(1, 2, 3)) * 7**1.5
    torch.testing.assert_close(views[0, 3:6, z, y, x], small, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(views[0, 6:, z, y, x], large, rtol=1e-12, atol=1e-12)
    # the output voxel depends on noise exactly 5 voxels either side along each axis, not beyond
    assert _reach(net, 13) == [(1, 11)] * 3
    assert SWNN(blocks=2, coarse=[5]).coarse == 5 and SWNN(blocks=2, coarse=()).coarse == 0
    for bad in ((7, 3), (3, 3), (3, 4)):
        with pytest.raises(ValueError, match="coarse must be 0"):
            SWNN(blocks=2, coarse=bad)


def test_eq12_blocks_from_correlation_length():
    # l_a = ceil((l_c − R_B − 1)/(R_A − 1)) with R_A = 3, R_B = 1
    assert [blocks_for_correlation_length(lc) for lc in (3, 4, 17, 18)] == [1, 1, 8, 8]
    assert blocks_for_correlation_length(19) == 9


def test_permuted_layout_equals_permuted_output():
    torch.manual_seed(0)
    net = SWNN(blocks=3, channels=6).eval()
    x = torch.randn(1, 3, 9, 11, 13)
    with torch.no_grad():
        reference = net(x)
        for perm in [(0, 2, 1), (2, 1, 0), (1, 2, 0)]:
            y = net(x.permute(0, 1, *(2 + p for p in perm)), permutation=perm)
            # same sums in another memory order: float32 round-off only
            torch.testing.assert_close(
                y, reference.permute(0, 1, *(2 + p for p in perm)), rtol=1e-5, atol=1e-5
            )


def test_noise_field_is_a_function_of_position():
    field = NoiseField(seed=7, tile=8)
    whole = field.region((0, 0, 0), (20, 21, 22))
    assert whole.shape == (3, 20, 21, 22) and whole.dtype == np.float32
    fresh = NoiseField(seed=7, tile=8)  # no shared cache
    assert np.array_equal(fresh.region((5, 3, 9), (7, 11, 4)), whole[:, 5:12, 3:14, 9:13])
    assert not np.array_equal(NoiseField(seed=8, tile=8).region((0, 0, 0), (4, 4, 4)), whole[:, :4, :4, :4])
    assert not np.array_equal(
        NoiseField(seed=7, sample=1, tile=8).region((0, 0, 0), (4, 4, 4)), whole[:, :4, :4, :4]
    )
    # standard normal: mean 0, std 1 within 5σ of their sampling error over 27,720 values
    assert abs(whole.mean()) < 5 / np.sqrt(whole.size) and abs(whole.std() - 1) < 5 / np.sqrt(2 * whole.size)


@pytest.mark.parametrize("whiten", [0, 4])
def test_noise_tiles_drawn_on_threads_are_the_field_itself(whiten):
    """Each tile is its own PCG64 stream keyed by (seed, sample, tile index), whatever the threads drawing it."""
    origin, shape, tile_bytes = (5, 0, 11), (27, 19, 30), 3 * 8**3 * 4  # 4 × 3 × 5 = 60 tiles of 8³
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = NoiseField(seed=3, sample=2, tile=8, whiten=whiten).region(origin, shape)
        torch.set_num_threads(4)
        # tiles in the middle of the region already cached: batches mix cached and drawn tiles
        field = NoiseField(seed=3, sample=2, tile=8, whiten=whiten, cache_bytes=100 * tile_bytes)
        field.region((13, 8, 19), (8, 8, 8))  # tiles (1..2, 1, 2..3)
        drawn, draw = [], field._draw
        field._draw = lambda index: drawn.append(index) or draw(index)
        threaded = field.region(origin, shape)
        assert len(drawn) == len(set(drawn)) == 56  # every other tile, each once
        # a cache of two tiles: the cached tiles are evicted by the batches' before they are reached
        small = NoiseField(seed=3, sample=2, tile=8, whiten=whiten, cache_bytes=2 * tile_bytes)
        small.region((13, 8, 19), (8, 8, 8))
        evicted = small.region(origin, shape)
        assert len(small._cache) == 2
    finally:
        torch.set_num_threads(previous)
    assert np.array_equal(serial, threaded) and np.array_equal(serial, evicted)
    if not whiten:  # the definition of the field: tile (1, 0, 2) starts at input voxel (8, 0, 16)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([3, 2, 1, 0, 2])))
        tile = rng.standard_normal((3, 8, 8, 8), dtype=np.float32)
        assert np.array_equal(serial[:, 3:11, 0:8, 5:13], tile)


def test_noise_transforms_receive_the_global_origin():
    seen = []

    def shift(noise, origin):
        seen.append(origin)
        return noise + 1.0

    field = NoiseField(seed=1, tile=8, transforms=(shift,))
    plain = NoiseField(seed=1, tile=8).region((2, 3, 4), (5, 5, 5))
    assert np.array_equal(field.region((2, 3, 4), (5, 5, 5)), plain + 1.0)
    assert seen == [(2, 3, 4)]


def test_whitened_noise_cells_have_exact_moments():
    plain = NoiseField(seed=2, tile=8).region((0, 0, 0), (16, 16, 16))
    field = NoiseField(seed=2, tile=8, whiten=4)
    noise = field.region((0, 0, 0), (16, 16, 16))
    cells = (
        noise.reshape(3, 4, 4, 4, 4, 4, 4)
        .transpose(1, 3, 5, 0, 2, 4, 6)
        .reshape(64, 3, 64)
        .astype(np.float64)
    )
    means = cells.mean(axis=2)
    centred = cells - means[:, :, None]
    covariances = centred @ centred.transpose(0, 2, 1) / 64
    # exact up to float32 round-off of values of order 1 (eps 1.2e-7, sums of 64 terms)
    assert np.abs(means).max() < 1e-6
    assert np.abs(covariances - np.eye(3)).max() < 1e-5
    # still a function of position: any region equals the same window of a larger one
    assert np.array_equal(
        NoiseField(seed=2, tile=8, whiten=4).region((3, 5, 9), (6, 7, 5)), noise[:, 3:9, 5:12, 9:14]
    )
    # a small change of the plain noise: per cell a shift of order 1/8 and a scale within about ±20 %
    assert np.corrcoef(plain.ravel(), noise.ravel())[0, 1] > 0.95
    with pytest.raises(ValueError, match="must divide the tile"):
        NoiseField(seed=2, tile=8, whiten=3)


def _model(blocks=3, n_phases=2, seed=0, whiten=0, dilations=None, coarse=0):
    torch.manual_seed(seed)
    net = SWNN(n_phases, blocks=blocks, channels=8, dilations=dilations, coarse=coarse)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for norm in net.norms:
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 1.5)
        # threshold at the median logit so that both phases occur
        logits = net.eval()(
            torch.from_numpy(NoiseField(seed=99, tile=8).region((0, 0, 0), (16, 16, 16)))[None]
        )
    threshold = float(logits[:, 0].median())
    return TrainedModel.from_network(net, threshold=threshold, noise=NoiseSpec(tile=8, whiten=whiten))


@pytest.mark.parametrize("n_phases", [2, 3])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("whiten", [0, 4])
@pytest.mark.parametrize(("dilations", "coarse"), [(None, 0), ((1, 2, 1), 0), (None, 5), (None, (3, 5))])
def test_chunked_generation_equals_whole_pass(n_phases, precision, whiten, dilations, coarse):
    # dilated blocks: halo 1 + 2 + 1 = 4; coarse noise of 5³: halo 3 + 2 = 5; blocks smaller than the halo
    # still read the noise of the whole pass
    # (seeds 2 and 11 with coarse noise: seed 0's random three-phase networks put every voxel in one phase)
    seed = {0: 0, 5: 2}.get(coarse, 11)
    model = _model(n_phases=n_phases, whiten=whiten, dilations=dilations, coarse=coarse, seed=seed)
    assert (
        model.network.halo
        == (3 if dilations is None else 4) + max(model.network.coarse_sides, default=1) // 2
    )
    shape = (13, 20, 11)
    whole = generate(
        model, shape, settings=GenerationSettings(block=64, seed=3, precision=precision), device="cpu"
    )
    assert whole.dtype == np.uint8 and whole.shape == shape
    assert set(np.unique(whole)) <= set(range(n_phases)) and len(np.unique(whole)) > 1
    for block in (2, 5, 8, 16):
        chunked = generate(
            model, shape, settings=GenerationSettings(block=block, seed=3, precision=precision), device="cpu"
        )
        # exact: every output voxel reads the same noise through the same arithmetic
        assert np.array_equal(chunked, whole), f"block {block} differs"


def test_logits_of_blocks_equal_whole_pass():
    model = _model()
    net = model.network
    field = NoiseField(seed=0, tile=8)
    with torch.no_grad():
        whole = net(torch.from_numpy(field.region((0, 0, 0), (26, 26, 26)))[None])
        part = net(torch.from_numpy(field.region((7, 3, 11), (12, 9, 15)))[None])
    # The same noise through the same weights. Some CPUs' convolution kernels (oneDNN on an Intel Xeon, not on
    # an AMD EPYC) pick their summation order by input shape, so the logits agree to float32 rounding over the
    # 8 layers (~1e-7 each), not always bit for bit; a crop misplaced by one voxel differs by ~1e-1. The labels
    # of chunked generation are compared exactly in test_chunked_generation_equals_whole_pass.
    torch.testing.assert_close(part, whole[:, :, 7:13, 3:6, 11:20], rtol=0, atol=1e-5)
    assert not torch.allclose(part, whole[:, :, 8:14, 3:6, 11:20], rtol=0, atol=1e-3)


def test_generation_reads_the_models_whitened_noise():
    model = _model(whiten=4)
    volume = generate(model, (6, 6, 6), settings=GenerationSettings(seed=5, precision="fp32"), device="cpu")
    noise = NoiseField(seed=5, tile=8, whiten=4).region((0, 0, 0), (12, 12, 12))
    with torch.no_grad():
        logits = model.network(torch.from_numpy(noise)[None])
    assert np.array_equal(volume, (logits[0, 0] > model.threshold).numpy().astype(np.uint8))
    plain = generate(
        _model(whiten=0), (6, 6, 6), settings=GenerationSettings(seed=5, precision="fp32"), device="cpu"
    )
    assert not np.array_equal(volume, plain)


def test_samples_and_seeds_differ():
    model = _model()
    a = generate(model, (12, 12, 12), settings=GenerationSettings(seed=0), device="cpu")
    b = generate(model, (12, 12, 12), settings=GenerationSettings(seed=0), sample=1, device="cpu")
    c = generate(model, (12, 12, 12), settings=GenerationSettings(seed=1), device="cpu")
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_blocks_cover_the_volume_once_in_z_slab_order():
    shape = (10, 7, 5)
    count = np.zeros(shape, dtype=int)
    starts = []
    for index in iter_blocks(shape, 4):
        count[index] += 1
        starts.append(index[0].start)
    assert (count == 1).all() and starts == sorted(starts)


def test_bad_generation_input():
    model = _model()
    with pytest.raises(ValueError, match="shape"):
        generate(model, (0, 4, 4), device="cpu")
    with pytest.raises(ValueError, match="block"):
        GenerationSettings(block=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            generate(model, (4, 4, 4), device="cuda")
