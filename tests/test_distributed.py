"""Blockwise generation on Dask (loopback LocalCluster): the same volume as one process, whatever the workers
and the block order, and an interrupted generation resumed without redoing its finished blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import swnn
from swnn.distributed import generate_zarr, parse_scheduler
from swnn.generation import GenerationSettings
from swnn.model import NoiseSpec, TrainedModel
from swnn.network import SWNN
from swnn.noise import NoiseField
from tests.test_study import TINY_PHYSICS, TINY_TRAINING  # the tiny study's settings

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")


def _model() -> TrainedModel:
    torch.manual_seed(3)
    net = SWNN(2, blocks=2, channels=8)
    with torch.no_grad():
        logits = net.eval()(
            torch.from_numpy(NoiseField(seed=9, tile=8).region((0, 0, 0), (16, 16, 16)))[None]
        )
    return TrainedModel.from_network(net, threshold=float(logits[:, 0].median()), noise=NoiseSpec(tile=8))


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_two_workers_give_the_single_process_volume(client, tmp_path):
    model = _model()
    serial = swnn.generate(model, 96, seed=5, sample=1, block=96, precision="fp32", device="cpu")
    path = swnn.generate_to(
        tmp_path / "v.zarr",
        model,
        96,
        seed=5,
        sample=1,
        block=32,
        precision="fp32",
        device="cpu",
        client=client,
    )
    array = zarr.open_array(store=str(path), mode="r")  # one array at the store's root
    assert array.chunks == (32, 32, 32)
    # exact: each block reads the same noise through the same arithmetic, in any process
    assert np.array_equal(array[...], serial)
    assert array.attrs["seed"] == 5 and array.attrs["sample"] == 1
    assert json.loads((tmp_path / "v.zarr.json").read_text())["format"] == "zarr"
    assert not (tmp_path / "v.zarr.partial").exists()


def test_a_worker_of_several_threads_gives_the_single_process_volume(tmp_path):
    # tasks on the threads of one worker share its generator and its noise cache: they take turns
    model = _model()
    serial = swnn.generate(model, 48, seed=2, block=48, precision="fp32", device="cpu")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=4, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        path = swnn.generate_to(
            tmp_path / "v.zarr", model, 48, seed=2, block=16, precision="fp32", device="cpu", client=client
        )
    assert np.array_equal(zarr.open_array(store=str(path), mode="r")[:], serial)


def test_an_interrupted_generation_resumes_without_redoing_finished_blocks(client, tmp_path):
    model = _model()
    settings = GenerationSettings(block=16, seed=2, precision="fp32")
    path = tmp_path / "v.zarr"

    def stop(finished):
        if finished == 6:
            raise KeyboardInterrupt  # the client stopped mid-way

    with pytest.raises(KeyboardInterrupt):
        generate_zarr(
            path, model, (48, 48, 32), client=client, settings=settings, device="cpu", on_block=stop
        )
    assert not path.exists()
    done = len(list((tmp_path / "v.zarr.partial" / "swnn-done").iterdir()))
    assert done >= 6
    stats = generate_zarr(path, model, (48, 48, 32), client=client, settings=settings, device="cpu")
    # blocks already running when the client stopped may finish (and mark themselves) after the count above
    assert stats.skipped >= done and stats.computed == 3 * 3 * 2 - stats.skipped
    serial = swnn.generate(model, (48, 48, 32), seed=2, block=64, precision="fp32", device="cpu")
    assert np.array_equal(zarr.open_array(store=str(path), mode="r")[...], serial)


def test_scheduler_strings():
    assert parse_scheduler("local") == ("local", None)
    assert parse_scheduler("local:3") == ("cluster", 3)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    for bad in ("local:0", "local:x", "cluster"):
        with pytest.raises(ValueError, match="scheduler"):
            parse_scheduler(bad)


def test_fixed_threads_sets_and_restores_torch_and_numba():
    import numba

    from swnn._threads import fixed_threads

    before = torch.get_num_threads(), numba.get_num_threads()
    with fixed_threads(1):
        assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    assert (torch.get_num_threads(), numba.get_num_threads()) == before
    with fixed_threads(None):  # None leaves them as they are
        assert (torch.get_num_threads(), numba.get_num_threads()) == before


def test_distributed_generation_writes_zarr_only(client, tmp_path):
    with pytest.raises(ValueError, match="give a path ending in .zarr"):
        swnn.generate_to(tmp_path / "v.npy", _model(), 16, client=client, device="cpu")


def test_command_line_runs_on_a_local_cluster(tmp_path, capsys):
    from swnn.cli import main

    model = _model()
    model.save(tmp_path / "m.pt")
    argv = ["generate", str(tmp_path / "m.pt"), "--size", "24", "--block", "16", "--quiet", "--device", "cpu"]
    assert main([*argv, "-o", str(tmp_path / "v.zarr"), "--scheduler", "local:2", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "Dask dashboard: http" in out and "wrote" in out
    serial = swnn.generate(model, 24, block=32, precision="fp32", device="cpu")
    assert np.array_equal(zarr.open_array(store=str(tmp_path / "v.zarr"), mode="r")[...], serial)
    assert main([*argv, "-o", str(tmp_path / "v.npy"), "--scheduler", "local:2"]) == 2
    assert "--scheduler local:2 writes a zarr store" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# A study on Dask
# ---------------------------------------------------------------------------------------------------------

STUDY = (
    'name = "dask"\nsamples = 2\nsize = 24\nr_max = 8\nrev = true\nphysics_samples = { permeability = 1 }\n'
    'metrics = ["fraction", "s2", "lineal_path", "chord_length", "specific_surface", "conductivity", '
    '"permeability"]\n'
    + TINY_TRAINING
    + TINY_PHYSICS
    + '\n[[references]]\nsource = "volume.npy"\nconditions = ["stochastic", 0.3]\n'
    # the same source and truth under other training settings: its truth pieces are the first one's
    + '\n[[references]]\nsource = "volume.npy"\nname = "wider"\ntraining = { channels = 6 }\n'
)


def test_a_study_on_two_workers_writes_the_serial_tables(client, tmp_path, monkeypatch):
    from scipy import ndimage

    monkeypatch.setattr("reports.study.tasks._INLINE_BYTES", 0)  # every array scattered, as a scan would be

    from reports.study import load_study, run_study

    rng = np.random.default_rng(7)
    field = ndimage.gaussian_filter(rng.normal(size=(48, 48, 48)), 2, mode="wrap")
    np.save(tmp_path / "volume.npy", (field > np.quantile(field, 0.6)).astype(np.uint8))
    (tmp_path / "dask.toml").write_text(STUDY)
    study = load_study(tmp_path / "dask.toml")
    serial = run_study(study, tmp_path / "serial", device="cpu", progress=False, threads=1)
    on_dask = run_study(study, tmp_path / "dask", device="cpu", progress=False, client=client)
    # 3 models, 6 samples, a truth of pieces shared by two references, physics: every kind of item
    assert len(on_dask.summary["runs"]) == 3 and "tasks on Dask" in on_dask.summary["timings"]["stages"]
    for table in ("metrics.csv", "summary.csv"):
        # exact: every item ran the same arithmetic on one thread, in whichever process
        assert (tmp_path / "serial" / table).read_bytes() == (tmp_path / "dask" / table).read_bytes(), table
    assert serial.summary["device"]["threads"] == on_dask.summary["device"]["threads"] == 1
    assert on_dask.summary["device"]["workers"] == 2

    # resumed on Dask: what the cache holds is read without a task; only the missing evaluation is sent
    tables = {t: (tmp_path / "dask" / t).read_bytes() for t in ("metrics.csv", "summary.csv")}
    # an item of the evaluation stage (the representative-volume stage's records carry 0 seconds and are
    # recomputed inside its own task), whatever order the hashed names list in
    records = sorted((tmp_path / "dask" / "cache" / "evaluations").glob("*.json"))
    missing = next(p for p in records if json.loads(p.read_text())["seconds"] > 0)
    missing.unlink()
    sent = []
    submit = client.submit
    monkeypatch.setattr(client, "submit", lambda fn, *a, **k: sent.append(fn.__name__) or submit(fn, *a, **k))
    run_study(study, tmp_path / "dask", device="cpu", progress=False, client=client)
    assert sorted(sent) == ["_evaluate", "_rev"]  # the representative-volume stage always runs as a task
    assert missing.is_file()
    for table, before in tables.items():
        assert (tmp_path / "dask" / table).read_bytes() == before, table


def test_study_scheduler_and_threads_are_checked_first(tmp_path, capsys):
    from swnn.cli import main

    for flags, message in (
        (["--scheduler", "cluster"], "scheduler must be 'local', 'local:N'"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
    ):
        assert main(["study", "-o", str(tmp_path / "out"), "--quiet", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()
