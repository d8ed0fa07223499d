# Sourced by scripts/run and scripts/test: make .venv and install ringex into it.
# Reinstalls only when pyproject.toml changed (a stamp holds its hash).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extra="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
stamp="$venv/.ringex-installed${extra:+-$extra}"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  spec="$root"; [ -n "$extra" ] && spec="$root[$extra]"
  "$venv/bin/python" -m pip install -q -e "$spec"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
