"""GPU detection, binds, lending and usage against a fake device tree (this machine has
no GPU); the test marked ``gpu`` runs only where a real NVIDIA GPU is found."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from grader.sandbox import gpus
from grader.sandbox.gpus import GpuInventory, GpuMonitor, GpuPool, GpuUnit
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.protections import Protections

SMI = """\
GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa-0000)
  MIG 3g.20gb     Device  0: (UUID: MIG-aaaa-1111)
  MIG 3g.20gb     Device  1: (UUID: MIG-aaaa-2222)
GPU 1: NVIDIA GeForce RTX 3090 (UUID: GPU-bbbb-0000)
"""
LDCONFIG = """\
3 libs found in cache `/etc/ld.so.cache'
	libnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
	libcuda.so.1 (libc6,x86-64) => /opt/nvidia/lib64/libcuda.so.1
	libcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12
	libm.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libm.so.6
"""


def fake_tree(root: Path, minors: tuple[int, ...] = (0, 1), mig: bool = False) -> Path:
    """Device nodes (empty files stand for them) and /proc entries of a fake driver."""
    dev = root / "dev"
    dev.mkdir(parents=True)
    for name in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"):
        (dev / name).touch()
    for m in minors:
        (dev / f"nvidia{m}").touch()
        info = root / "proc" / "driver" / "nvidia" / "gpus" / f"0000:0{m}:00.0"
        info.mkdir(parents=True)
        uuid = "GPU-aaaa-0000" if m == 0 else "GPU-bbbb-0000"
        (info / "information").write_text(
            f"Model: \t\t Fake GPU {m}\nIRQ: 1\nGPU UUID: \t {uuid}\nDevice Minor: \t {m}\n"
        )
    if mig:
        (dev / "nvidia-caps").mkdir()
        (dev / "nvidia-caps" / "nvidia-cap1").touch()
    return root


def test_smi_listing_gives_whole_gpus_or_their_mig_instances() -> None:
    units = gpus.parse_smi_list(SMI)
    assert [(u.uuid, u.minor, u.mig) for u in units] == [
        ("MIG-aaaa-1111", 0, True),
        ("MIG-aaaa-2222", 0, True),
        ("GPU-bbbb-0000", 1, False),
    ]
    assert units[0].name == "NVIDIA A100-SXM4-40GB MIG 3g.20gb"


def test_detection_reads_the_fake_tree(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, mig=True)
    found = gpus.detect(root, smi=lambda: SMI, ldconfig=lambda: LDCONFIG)
    assert found.source == "nvidia-smi"
    assert [u.uuid for u in found.units] == ["MIG-aaaa-1111", "MIG-aaaa-2222", "GPU-bbbb-0000"]
    assert [p.relative_to(root).as_posix() for p in found.control_nodes] == [
        "dev/nvidiactl",
        "dev/nvidia-uvm",
        "dev/nvidia-uvm-tools",
        "dev/nvidia-caps/nvidia-cap1",
    ]
    # only NVIDIA's driver libraries (the CUDA runtime ships with torch, libm is libc's)
    assert found.libraries == (
        Path("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"),
        Path("/opt/nvidia/lib64/libcuda.so.1"),
    )


def test_without_nvidia_smi_proc_gives_whole_gpus(tmp_path: Path) -> None:
    found = gpus.detect(fake_tree(tmp_path), smi=lambda: None, ldconfig=lambda: "")
    assert found.source == "/proc"
    assert [(u.uuid, u.minor, u.name) for u in found.units] == [
        ("GPU-aaaa-0000", 0, "Fake GPU 0"),
        ("GPU-bbbb-0000", 1, "Fake GPU 1"),
    ]


def test_no_control_node_means_no_gpu(tmp_path: Path) -> None:
    root = fake_tree(tmp_path)
    (root / "dev" / "nvidiactl").unlink()
    assert gpus.detect(root, smi=lambda: SMI, ldconfig=lambda: LDCONFIG).units == ()


def test_a_gpu_whose_node_is_missing_is_not_lent(tmp_path: Path) -> None:
    root = fake_tree(tmp_path)
    (root / "dev" / "nvidia1").unlink()
    found = gpus.detect(root, smi=lambda: SMI, ldconfig=lambda: "")
    assert [u.minor for u in found.units] == [0, 0]


def test_this_machines_detection_runs_without_error() -> None:
    found = gpus.detect()
    assert found.source in ("nvidia-smi", "/proc", "none")
    assert (found.source == "none") == (found.units == ())


def test_binds_expose_only_the_lent_gpus_nodes_at_their_real_paths(tmp_path: Path) -> None:
    root = fake_tree(tmp_path)
    found = gpus.detect(root, smi=lambda: None, ldconfig=lambda: LDCONFIG)
    args = gpus.bwrap_args(found, [found.units[1]])
    pairs = [(args[i], args[i + 1], args[i + 2]) for i in range(0, len(args), 3)]
    assert pairs == [
        ("--dev-bind", str(root / "dev/nvidiactl"), "/dev/nvidiactl"),
        ("--dev-bind", str(root / "dev/nvidia-uvm"), "/dev/nvidia-uvm"),
        ("--dev-bind", str(root / "dev/nvidia-uvm-tools"), "/dev/nvidia-uvm-tools"),
        ("--dev-bind", str(root / "dev/nvidia1"), "/dev/nvidia1"),
        # /usr is bound already; a driver library elsewhere (/opt) is bound read-only
        (
            "--ro-bind-try",
            "/opt/nvidia/lib64/libcuda.so.1",
            "/opt/nvidia/lib64/libcuda.so.1",
        ),
    ]
    assert str(root / "dev/nvidia0") not in args


def test_the_session_puts_the_gpu_binds_after_its_private_dev(tmp_path: Path) -> None:
    binds = ("--dev-bind", "/x/dev/nvidia0", "/dev/nvidia0")
    session = SandboxSession(
        tmp_path / "work",
        tmp_path / "out",
        tmp_path / "rt",
        mode="permissive",
        protections=Protections(True, None, False, True, False),
        device_binds=binds,
        data_binds=((tmp_path / "mnist", "/grader-data/mnist"),),
    )
    args = session._bwrap_args()
    dev = args.index("/dev")
    at = args.index("--dev-bind")
    assert args[dev - 1] == "--dev" and at > dev
    assert args[at : at + 3] == list(binds)
    i = args.index("/grader-data/mnist")
    assert args[i - 2 : i] == ["--ro-bind", str(tmp_path / "mnist")]


def test_env_names_the_lent_units_and_the_advisory_cap() -> None:
    units = gpus.parse_smi_list(SMI)[:2]
    env = gpus.gpu_env(units, 4096)
    assert env["CUDA_VISIBLE_DEVICES"] == "MIG-aaaa-1111,MIG-aaaa-2222"
    assert env["GRADER_GPU_MEMORY_MB"] == "4096"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert "GRADER_GPU_MEMORY_MB" not in gpus.gpu_env(units, None)


def inventory(n: int) -> GpuInventory:
    return GpuInventory(tuple(GpuUnit(f"GPU-{i}", i, "fake") for i in range(n)))


def test_concurrent_jobs_never_share_a_unit() -> None:
    pool = GpuPool(inventory(2))
    held: list[str] = []
    lock = threading.Lock()
    overlaps: list[str] = []
    start = threading.Barrier(6)

    def job() -> None:
        start.wait()
        for _ in range(20):
            with pool.lease(1) as grant:
                (uuid,) = (u.uuid for u in grant.units)
                with lock:
                    if uuid in held:
                        overlaps.append(uuid)
                    held.append(uuid)
                with lock:
                    held.remove(uuid)

    threads = [threading.Thread(target=job) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    assert pool._free and len(pool._free) == 2  # every unit came back


def test_a_limit_lends_fewer_and_asking_for_more_is_refused() -> None:
    pool = GpuPool(inventory(4), limit=2)
    assert pool.size == 2
    with pytest.raises(ValueError, match="3 GPU"), pool.lease(3):
        pass
    with pool.lease(2), pytest.raises(TimeoutError), pool.lease(1, timeout=0.01):
        pass


def test_the_default_pool_is_empty_until_configured() -> None:
    saved = gpus._POOL
    try:
        gpus._POOL = None
        assert gpus.pool().size == 0  # never a GPU by default, whatever the machine has
        assert gpus.configure(1, inventory(3)).size == 1
        assert gpus.pool().size == 1
    finally:
        gpus._POOL = saved


def test_usage_counts_only_the_jobs_own_processes() -> None:
    listing = iter(["101, 300\n999, 5000\n", "101, 700\n102, 100\n", ""])
    monitor = GpuMonitor(
        inventory(1).units, pids=lambda: {101, 102}, query=lambda: next(listing), memory_cap_mb=2048
    )
    monitor.sample(1.0)
    monitor.sample(1.0)
    monitor.sample(1.0)  # nothing on the GPU: no GPU time
    assert monitor.usage() == {
        "kind": "gpu",
        "gpus": [{"uuid": "GPU-0", "name": "fake", "mig": False}],
        "memory_cap_mb": 2048,
        "memory_cap_enforced": False,
        "peak_memory_mb": 800.0,
        "gpu_seconds": 2.0,
    }


def test_without_nvidia_smi_usage_is_unknown() -> None:
    monitor = GpuMonitor(inventory(1).units, pids=set, query=lambda: None)
    monitor.sample(1.0)
    assert (monitor.usage()["peak_memory_mb"], monitor.usage()["gpu_seconds"]) == (None, None)


@pytest.mark.gpu
def test_a_real_gpu_is_found_with_its_nodes() -> None:
    found = gpus.detect()
    assert found.units, "no NVIDIA GPU found"
    for unit in found.units:
        assert os.path.exists(found.gpu_node(unit.minor))
    assert any(p.name.startswith("libcuda.so") for p in found.libraries)


def test_the_usage_section_fits_the_result_schema() -> None:
    import json

    import jsonschema

    schema = json.loads(
        (Path(gpus.__file__).parents[1] / "schema" / "result.schema.json").read_text()
    )
    section = schema["properties"]["devices"]
    monitor = GpuMonitor(gpus.parse_smi_list(SMI)[:1], pids=set, query=lambda: "")
    monitor.sample(1.0)
    jsonschema.validate(monitor.usage(), section)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**monitor.usage(), "kind": "tpu"}, section)


@pytest.mark.gpu
def test_a_lent_gpu_is_visible_in_the_sandbox_and_only_it(tmp_path: Path) -> None:
    import nbformat

    from grader.sandbox import (
        AnswerRequest,
        DeviceRequest,
        ExecutionRequest,
        NotebookTask,
        SubmissionFiles,
        execute,
    )

    saved = gpus._POOL
    try:
        lent = gpus.configure(1)
        nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
        nb.cells = [
            nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
                "import os\nvisible = os.environ['CUDA_VISIBLE_DEVICES']\n"
                "nodes = sorted(n for n in os.listdir('/dev') if n.startswith('nvidia'))"
            )
        ]
        (tmp_path / "s").mkdir()
        nbformat.write(nb, tmp_path / "s" / "hw.ipynb")  # type: ignore[no-untyped-call]
        got = execute(
            ExecutionRequest(
                files=SubmissionFiles(tmp_path / "s", ("hw.ipynb",)),
                notebook=NotebookTask(
                    "hw.ipynb", harvest=(AnswerRequest("visible"), AnswerRequest("nodes"))
                ),
                devices=DeviceRequest(gpus=1),
            )
        )
        assert got.run is not None
        unit = lent.inventory.units[0]
        assert got.run.answers["visible"].value == unit.uuid
        gpu_nodes = [n for n in got.run.answers["nodes"].value if n[len("nvidia") :].isdigit()]
        assert gpu_nodes == [f"nvidia{unit.minor}"]
        assert got.devices is not None and got.devices["kind"] == "gpu"
    finally:
        gpus._POOL = saved
