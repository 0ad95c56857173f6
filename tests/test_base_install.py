"""Every user command works after the README's first command (`pip install -e .`, no extras): the commands run in
one process where the packages only the extras bring cannot be imported (`sys.modules[name] = None`: `import name`
fails and `importlib.util.find_spec(name)` is None, as when they are not installed)."""

import json
import subprocess
import sys

EXTRAS_ONLY = ["mauve", "gguf", "matplotlib", "sklearn", "evaluate", "deepspeed", "prdc", "olah"]
PROGRAM = "import os\n\n\ndef main():\n    path = os.getcwd()\n    print(path)\n\n\nmain()\n"
COMMANDS = [
    ["--help"],
    ["config", "accelerate/fsdp"],
    ["generate", "--num-samples", "1", "--steps", "4"],
    ["autoencode", "prog.py", "--steps", "4"],
    ["interpolate", "prog.py", "prog.py", "--alphas", "0,1", "--steps", "4"],
    ["complete", "prog.py", "--lines", "3", "--steps", "4", "--gen-length", "8"],
    ["infill", "prog.py", "--span", "5:6", "--steps", "4", "--gen-length", "8"],
]
RUN = """
import json, sys

for name in {blocked!r}:
    sys.modules[name] = None
from crocodil_hf.cli import main

statuses = []
for argv in {commands!r}:
    try:
        statuses.append(main(argv))
    except SystemExit as end:  # --help
        statuses.append(end.code or 0)
print("STATUSES " + json.dumps(statuses))
"""


def test_every_user_command_runs_without_the_extras(tmp_path):
    (tmp_path / "prog.py").write_text(PROGRAM)
    code = RUN.format(blocked=EXTRAS_ONLY, commands=COMMANDS)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = json.loads(result.stdout.split("STATUSES ")[-1])
    assert dict(zip((c[0] for c in COMMANDS), statuses)) == {c[0]: 0 for c in COMMANDS}, result.stderr[-3000:]
