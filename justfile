# Tonestream tasks. `just up` runs the whole system on its embedded default; `just test` runs the
# test suite. Both create/refresh the local virtualenv (.venv) first.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv / "bin/python"

# List the recipes.
default:
    @just --list

# Create or refresh .venv: CPU torch first (so nothing pulls a CUDA build), then Tonestream.
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    [ -x {{py}} ] || python3 -m venv {{venv}}
    stamp={{venv}}/.tonestream-installed
    want=$(cat pyproject.toml justfile | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then exit 0; fi
    echo "setting up {{venv}} (first run takes a few minutes)…"
    {{py}} -m pip install --quiet --upgrade pip
    {{py}} -m pip install --quiet "torch==2.13.0"
    {{py}} -m pip install --quiet -e ".[clip,dev]"
    # open-clip-torch, timm and torchvision declare torch requirements that would pull CUDA wheels.
    {{py}} -m pip install --quiet --no-deps "open-clip-torch>=3.3" "timm>=1.0" "torchvision==0.28.0"
    # musicnn ships the pretrained tag models (ISC); its declared deps (TF1, old librosa) are not used.
    {{py}} -m pip install --quiet --no-deps "musicnn==0.1.0"
    # tinysoundfont (the accuracy bench's SF2 renderer) declares pyaudio for live playback, which
    # it never needs here and which cannot build without PortAudio's headers.
    {{py}} -m pip install --quiet --no-deps "tinysoundfont==0.3.7"
    [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || echo "note: the accuracy bench's validation split needs FluidR3_GM.sf2: apt-get install fluid-soundfont-gm"
    echo "$want" > "$stamp"

# Run the whole system on its embedded default (NATS, Mongo-protocol server, Qdrant Edge, blob folder).
up *ARGS: setup
    {{venv}}/bin/tonestream up {{ARGS}}

# Run the test suite against real embedded services.
test *ARGS: setup
    {{py}} -m pytest {{ARGS}}

# Measure throughput, stage timings and memory on the embedded stack (`--quick` for a smoke run).
bench *ARGS: setup
    {{py}} -m bench.run {{ARGS}}

# Write the HTTP API (docs/openapi.json) and event log (docs/asyncapi.json) documents.
docs *ARGS: setup
    {{venv}}/bin/tonestream docs {{ARGS}}

# Lint and type-check.
lint: setup
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .
    {{venv}}/bin/mypy

# Format the code.
fmt: setup
    {{venv}}/bin/ruff format .
    {{venv}}/bin/ruff check --fix .
