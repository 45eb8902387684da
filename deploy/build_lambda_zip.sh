#!/usr/bin/env bash
# Build the AWS Lambda deployment package for harvester.
#
#   deploy/build_lambda_zip.sh [x86_64|arm64]        (default x86_64)
#   deploy/build_lambda_zip.sh --print-deps          print the runtime dependencies and exit
#
# Writes dist/harvester-lambda-<arch>.zip and a copy at dist/harvester-lambda.zip, the path that
# deploy/template.yaml's CodeUri names (SAM CLI needs a literal local path there, so it cannot follow
# the Architecture parameter): deploy with the same architecture you built, e.g.
#   deploy/build_lambda_zip.sh arm64 && sam deploy ... --parameter-overrides Architecture=arm64
#
# The runtime dependencies are read from pyproject.toml [project].dependencies and installed as
# Linux wheels for CPython 3.12 (the function's runtime) and the chosen architecture, whatever this
# machine is: orjson, aiohttp, multidict, yarl, ... are compiled, and a wheel of the wrong architecture
# fails only at import time in Lambda. botocore is bundled on purpose: aiobotocore pins it tightly and
# the copy in the Lambda runtime is not guaranteed to match.
#
# Environment: PYTHON (default python3, needs >= 3.11 for tomllib and a working pip),
#              PLATFORMS (default "manylinux2014_<m> manylinux_2_28_<m>"; the python3.12 runtime runs
#              on Amazon Linux 2023, glibc 2.34, so manylinux_2_28 wheels load too).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
PY_TARGET=3.12
MAX_ZIPPED=$((50 * 1024 * 1024))     # direct upload limit (larger zips must go through S3)
MAX_UNZIPPED=$((250 * 1024 * 1024))  # function code plus all layers, unzipped

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$ROOT/dist"

# Runtime dependencies, one per line, exactly as pyproject.toml declares them. (A plain assignment, not
# a process substitution, so that a failure here stops the script under set -e.)
DEPS_TEXT="$("$PYTHON" - "$ROOT/pyproject.toml" <<'EOF'
import sys
try:
    import tomllib
except ImportError:
    sys.exit(f"{sys.executable} is Python {sys.version.split()[0]}: need >= 3.11 (tomllib); set PYTHON")
with open(sys.argv[1], "rb") as f:
    deps = tomllib.load(f)["project"].get("dependencies", [])
if not deps:
    sys.exit("pyproject.toml [project].dependencies is empty")
print("\n".join(deps))
EOF
)"
mapfile -t DEPS <<<"$DEPS_TEXT"
if [[ "${1:-}" == "--print-deps" ]]; then
    printf '%s\n' "${DEPS[@]}"
    exit 0
fi

ARCH="${1:-x86_64}"
case "$ARCH" in
    x86_64) MACHINE=x86_64 ;;
    arm64 | aarch64) ARCH=arm64; MACHINE=aarch64 ;;
    *) echo "usage: $0 [x86_64|arm64|--print-deps]" >&2; exit 2 ;;
esac
PLATFORMS="${PLATFORMS:-manylinux2014_${MACHINE} manylinux_2_28_${MACHINE}}"
OUT="$DIST/harvester-lambda-$ARCH.zip"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/harvester-lambda-$ARCH.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

echo "building for $ARCH; dependencies (pyproject.toml): ${DEPS[*]}"

PLATFORM_ARGS=()
for p in $PLATFORMS; do PLATFORM_ARGS+=(--platform "$p"); done

"$PYTHON" -m pip install \
    --quiet --disable-pip-version-check --no-compile \
    --target "$STAGE" \
    "${PLATFORM_ARGS[@]}" \
    --python-version "$PY_TARGET" --implementation cp \
    --only-binary=:all: \
    "${DEPS[@]}"

# The package itself: a plain copy, so the zip never depends on how (or whether) it is installed here.
# Only the harvester: the TMDB stand-in (tmdb_standin/, a test double) stays out, and the harvester
# never imports it (its `demo` and `standin` commands say it is not installed).
cp -R "$ROOT/harvester" "$STAGE/harvester"
if [[ -e "$STAGE/tmdb_standin" ]]; then
    echo "error: the TMDB stand-in (tmdb_standin) must not be in the Lambda package" >&2
    exit 1
fi

# No bytecode of whatever interpreter touched the stage, and no scripts (of no use in Lambda).
find "$STAGE" -type d -name __pycache__ -prune -exec rm -rf {} +
find "$STAGE" -type f -name '*.py[co]' -delete
rm -rf "${STAGE:?}/bin"

# Bytecode for the runtime. /var/task is read-only, so without .pyc files every cold start compiles all
# it imports: 0.76 s of CPU instead of 0.28 (measured with 3.11), some 7 s more on a 128 MB function.
# unchecked-hash: the zip's fixed timestamps would fail a timestamp check, and nothing there changes.
# Only an interpreter of the runtime's version writes bytecode the runtime loads.
if "$PYTHON" -c "import sys; sys.exit(sys.version_info[:2] != (${PY_TARGET/./, }))"; then
    "$PYTHON" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$STAGE" >/dev/null \
        || echo "warning: some files did not compile; they are compiled at import instead" >&2
    echo "bytecode compiled for Python $PY_TARGET (unchecked-hash)"
else
    echo "warning: $PYTHON is not Python $PY_TARGET, so the zip has no bytecode and every cold start" \
        "compiles what it imports (about 7 s on a 128 MB function); set PYTHON=python$PY_TARGET" >&2
fi
# Lambda runs the code as a non-root user: everything must be world-readable (dirs traversable).
chmod -R a+rX "$STAGE"

"$PYTHON" - "$STAGE" "$MACHINE" <<'EOF'
# Every compiled extension must be an ELF object for the target machine (e_machine at offset 18).
import pathlib, struct, sys
stage, machine = pathlib.Path(sys.argv[1]), sys.argv[2]
want = {"x86_64": 62, "aarch64": 183}[machine]
names = {62: "x86_64", 183: "aarch64"}
bad, count = [], 0
for so in sorted(stage.rglob("*.so*")):
    head = so.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        continue
    count += 1
    endian = "<" if head[5] == 1 else ">"
    (got,) = struct.unpack(endian + "H", head[18:20])
    if got != want:
        bad.append(f"{so.relative_to(stage)}: {names.get(got, got)}")
orjson = sorted(p.name for p in (stage / "orjson").glob("*.so"))
if not orjson:
    sys.exit("orjson's compiled module is missing from the package")
if bad:
    sys.exit("compiled modules for the wrong architecture:\n  " + "\n  ".join(bad))
print(f"{count} compiled modules, all {machine}; orjson: {', '.join(orjson)}")
EOF

mkdir -p "$DIST"
rm -f "$OUT"
"$PYTHON" - "$STAGE" "$OUT" <<'EOF'
# Sorted entries and a fixed timestamp: the same inputs give the same zip (and the same CodeSha256).
import os, pathlib, sys, zipfile
stage, out = pathlib.Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        info = zipfile.ZipInfo(str(path.relative_to(stage)), date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (os.stat(path).st_mode & 0xFFFF) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, path.read_bytes(), compresslevel=9)
EOF
ZIPPED=$(stat -c %s "$OUT")
UNZIPPED=$(find "$STAGE" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "built $OUT ($ARCH)"
echo "  zipped:   $ZIPPED bytes ($(mib "$ZIPPED")), limit $(mib "$MAX_ZIPPED") for a direct upload"
echo "  unzipped: $UNZIPPED bytes ($(mib "$UNZIPPED")), limit $(mib "$MAX_UNZIPPED") with all layers"

status=0
if ((ZIPPED > MAX_ZIPPED)); then
    echo "error: the zip exceeds Lambda's 50 MB direct-upload limit" >&2
    status=1
fi
if ((UNZIPPED > MAX_UNZIPPED)); then
    echo "error: the unzipped package exceeds Lambda's 250 MB limit" >&2
    status=1
fi
if ((status == 0)); then
    cp "$OUT" "$DIST/harvester-lambda.zip"
    echo "copied to $DIST/harvester-lambda.zip: deploy it with Architecture=$ARCH"
fi
exit "$status"
