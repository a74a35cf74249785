"""The benchmarks start the stages as deployed: ``python -m shoppulse.consumers.cli run STAGE``.

Why a test: after the move to one import name, ``bench soak`` and ``bench pipeline`` (with stage 3)
still started ``-m consumers.cli``, which no longer exists; the stage exited 1 at once.
"""

import importlib.util
import shlex
import subprocess
import sys

from shoppulse.devkit.bench import insights, pipeline


def test_every_stage_command_names_an_importable_module_that_knows_the_stage() -> None:
    commands = [pipeline.stage_command(s) for s in ("enrich", "profiles", "insights")] + [insights.INSIGHTS_COMMAND]
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == sys.executable and argv[1] == "-m"
        assert importlib.util.find_spec(argv[2]) is not None, command
    # the module really runs the command line it is given (help only: no broker needed)
    argv = [*shlex.split(pipeline.stage_command("profiles")), "--help"]
    done = subprocess.run(argv, capture_output=True, timeout=120)
    assert done.returncode == 0 and b"run profiles" in done.stdout, done.stderr[-500:]
