"""Developer and user entry points: `nox -s tests`, `nox -s quickstart`, `nox -s lint`, benchmarks."""

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

PYTHON = "3.11"


def _install(session, extra="dev"):
    # torch resolves to the locally available release; nothing newer is required.
    session.install("-e", f".[{extra}]" if extra else ".")


@nox.session(python=PYTHON)
def tests(session):
    """Installs system packages and services the tests use, then runs the whole suite (CPU only)."""
    session.run("bash", "scripts/setup-system.sh", "--tests", external=True)
    _install(session)
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "WANDB_MODE": "offline",
           "WANDB_SILENT": "true"}
    # A throwaway PostgreSQL server on 127.0.0.1 for the multi-worker tests; the tests never assume one exists.
    started = session.run("bash", "scripts/start-postgres.sh", external=True, silent=True)
    if started is None:  # `nox -s tests --install-only`: nothing was run, the environment is ready
        return
    prefix = "export AUGBENCH_TEST_POSTGRES_URL="
    urls = [line[len(prefix):] for line in started.splitlines() if line.startswith(prefix)]
    if not urls:
        session.error(f"scripts/start-postgres.sh did not start PostgreSQL:\n{started}")
    env["AUGBENCH_TEST_POSTGRES_URL"] = urls[0]
    session.run("pytest", "-q", *session.posargs, env=env)


@nox.session(python=PYTHON)
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "augbench", "tests", "noxfile.py")


@nox.session(python=PYTHON)
def quickstart(session):
    """The main job, end to end on real data: a small Fashion-MNIST experiment."""
    session.run("bash", "scripts/setup-system.sh", external=True)
    _install(session, extra=None)
    out = "runs/quickstart"
    # Two worker processes of one core each train the small model faster than one process on two cores (1.09x
    # over the whole experiment here, docs/pilot.md); rerunning resumes and trains only what is missing.
    workers = str(min(2, os.cpu_count() or 1))
    session.run("augbench", "tune", "recipes/experiments/quickstart.yaml", "--out", out, "--workers", workers,
                env={"WANDB_MODE": os.environ.get("WANDB_MODE", "offline")})
    # The quick start ends with the experiment's leaderboard (the published one in leaderboard/ is built the same way).
    session.run("augbench", "leaderboard", "build", "--from", out, "--out", f"{out}/leaderboard")
    session.log(f"open {out}/leaderboard/index.html (or read {out}/leaderboard/README.md)")


@nox.session(python=PYTHON)
def methods_table(session):
    """CE, LSR, Tf-KD_reg, CS-KD, PS-KD and DLB on a Fashion-MNIST subset, clean and with 40% label noise."""
    session.run("bash", "scripts/setup-system.sh", external=True)
    _install(session, extra=None)
    session.run("python", "scripts/methods_table.py", "--out", "runs/methods_table", *session.posargs,
                env={"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "WANDB_MODE": "offline"})


@nox.session(python=PYTHON)
def bench(session):
    """`augbench bench`: model-only, data-path (per-sample vs batched, and Kornia) and end-to-end throughput."""
    session.run("bash", "scripts/setup-system.sh", external=True)
    _install(session, extra="bench")
    session.run("augbench", "bench", *session.posargs)


@nox.session(python=PYTHON)
def device_check(session):
    """On a CUDA machine: no batch op synchronises with the host, the policies' GPU path (and its CUDA graph)
    gives the CPU path's pixels, and the training loop's synchronisations per epoch do not grow with its steps."""
    _install(session, extra=None)
    session.run("python", "scripts/device_check.py", *session.posargs)


@nox.session(python=PYTHON)
def pilot(session):
    """The protocol pilot: seed-to-seed spread against cost for candidate Fashion-MNIST settings (docs/pilot.md)."""
    session.run("bash", "scripts/setup-system.sh", external=True)
    _install(session, extra=None)
    session.run("python", "scripts/pilot.py", *session.posargs, env={"WANDB_MODE": "disabled"})


@nox.session(python=PYTHON)
def pruning_savings(session):
    """The same small Fashion-MNIST search with and without its pruner: epochs trained in each."""
    session.run("bash", "scripts/setup-system.sh", external=True)
    _install(session, extra=None)
    session.run("python", "scripts/pruning_savings.py", *session.posargs)
