# Quick start: `make demo` runs the main job, `make test` runs the whole suite.
# Each target creates or updates .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean ft-programs bytecode

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Every node process imports the package; where PYTHONDONTWRITEBYTECODE is set
# (as on the CI machines) each one compiled it again from source (~35 ms of the
# fork server's 110 ms start). compileall writes the caches once, as pip does
# for an installed package; Python checks them against the sources on import.
bytecode: $(STAMP)
	@$(VENV)/bin/python -m compileall -q src/synod

demo: bytecode
	$(VENV)/bin/synod demo
	@echo "The synod command is .venv/bin/synod; run '. .venv/bin/activate' to type plain 'synod' (see README: Using it)."

test: bytecode
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/python -m pytest -q

bench: bytecode
	$(VENV)/bin/python benchmarks/sim_throughput.py
	$(VENV)/bin/python benchmarks/mr_wordcount.py
	$(VENV)/bin/python benchmarks/check_lin.py
	$(VENV)/bin/python benchmarks/raft_sim.py
	$(VENV)/bin/python benchmarks/raft_kv_lin.py
	$(VENV)/bin/python benchmarks/raft_faults.py --minutes 2
	$(VENV)/bin/python benchmarks/memcache_throughput.py

clean:
	rm -rf $(VENV) runs out

# The fault-tolerant machine's own programs (shipped built; this rebuilds them).
# Needs Debian's gcc-riscv64-unknown-elf.
FT_PROGRAMS := src/synod/ft/programs
ft-programs:
	for p in echo reads primes spew netecho; do \
	  riscv64-unknown-elf-gcc -march=rv32im -mabi=ilp32 -O2 -ffreestanding -nostdlib -nostartfiles -static \
	    -fno-pic -fno-builtin -T $(FT_PROGRAMS)/user.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments -s \
	    -o $(FT_PROGRAMS)/$$p.elf $(FT_PROGRAMS)/crt0.S $(FT_PROGRAMS)/$$p.c -lgcc || exit 1; \
	done
	for p in disk ticks; do \
	  riscv64-unknown-elf-gcc -march=rv32im_zicsr -mabi=ilp32 -O2 -ffreestanding -nostdlib -nostartfiles -static \
	    -fno-pic -fno-builtin -T $(FT_PROGRAMS)/bare.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
	    -Wl,-x -o $(FT_PROGRAMS)/$$p.elf $(FT_PROGRAMS)/bare_crt0.S $(FT_PROGRAMS)/$$p.c -lgcc || exit 1; \
	done
