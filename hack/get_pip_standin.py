"""Local stand-in for the pip bootstrap script ansible-test downloads (its host is unreachable here).

ansible-test runs it inside a fresh venv with pip's install arguments. ensurepip runs in a child
process because it points PIP_CONFIG_FILE at /dev/null, which would drop the machine's registry
settings; the install then runs with the caller's environment untouched.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
# get-pip.py options that "pip install" does not know.
args = [a for a in sys.argv[1:] if a not in ("--quiet", "--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"] + args)
