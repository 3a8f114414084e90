#!/usr/bin/env bash
# Install the embedded standalone Milvus server (PyPI package `milvus`, Milvus 2.3.5) in a virtualenv of its own,
# because it conflicts with the SDK's dependencies, and print the path of its `milvus-server` executable.
#   MILVUS_VENV    where the virtualenv lives (default: ~/.cache/smar-sdk/milvus-venv); reused when present
#   MILVUS_PYTHON  interpreter that creates it (default: python3; it needs the lzma module to unpack the server)
# Installer output goes to stderr; stdout is exactly the executable's path. Start the server with e.g.
#   "$(bash .ci/milvus-server.sh)" --data /tmp/milvus --proxy-port 19530    # SIGKILL its process group to stop it
set -euo pipefail
venv="${MILVUS_VENV:-$HOME/.cache/smar-sdk/milvus-venv}"
python="${MILVUS_PYTHON:-python3}"
server="$venv/bin/milvus-server"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ ! -x "$server" ]] || ! "$venv/bin/python" -c "import lzma, milvus" >/dev/null 2>&1; then
    "$python" -c "import lzma, venv" || { echo "$python lacks the lzma or venv module; set MILVUS_PYTHON" >&2; exit 1; }
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet "milvus==2.3.5" >&2
fi
echo "$server"
