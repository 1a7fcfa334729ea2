#!/usr/bin/env bash
# The BG/NBD fit on CDNOW (2,357 customers), Touchpoint's against Python `lifetimes` 0.11.3
# (the common reference implementation), in the same run on the same machine.
# The first run creates a Python venv under target/ (needs PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/bench-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q lifetimes==0.11.3 numpy==1.26.4 scipy==1.11.4 pandas==1.5.3
fi
RUST=$(cargo bench --quiet --bench value_fit -- --noplot fit_bg_nbd 2>/dev/null \
  | awk '/time:/ && !done {gsub(/\[/,""); print $5, $6; done=1}')
PY=$("$VENV/bin/python" - <<'PY'
import timeit, warnings
warnings.filterwarnings("ignore")
from lifetimes import BetaGeoFitter
from lifetimes.datasets import load_cdnow_summary
d = load_cdnow_summary()
n = 10
t = min(timeit.repeat(lambda: BetaGeoFitter().fit(d.frequency, d.recency, d["T"]), number=n, repeat=3)) / n
print(f"{t * 1e3:.1f} ms")
PY
)
python3 - "$RUST" "$PY" <<'PY'
import json, sys
def ms(s):
    v, unit = s.split()
    return float(v) * {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
rust, py = ms(sys.argv[1]), ms(sys.argv[2])
print(json.dumps({"touchpoint_bg_nbd_fit_ms": rust, "lifetimes_bg_nbd_fit_ms": py,
                  "speedup": round(py / rust, 1)}, indent=2))
PY
