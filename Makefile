# ztrain: the README's commands.
#   make test  - install dependencies (apt), configure, build, run every CPU test
#   make run   - build and run the main job: `ztrain train` on configs/tiny-run.json (tiny GPT-2 on
#                synthetic Markov data, CPU), generating the data under out/ the first time
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test run clean

all: build

deps:
	bash scripts/install-deps.sh

configure:
	@if [ ! -f $(BUILD)/CMakeCache.txt ]; then \
	  cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS); \
	fi

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE gpu

DATA = out/data
run: build
	@if [ ! -f $(DATA)/markov-train.bin ] || [ ! -f $(DATA)/markov-eval.bin ]; then \
	  mkdir -p $(DATA) && $(BUILD)/ztrain data synth --out $(DATA)/markov-train.bin --vocab 64 \
	    --tokens 2000000 --branching 2 --seed 1 --eval-out $(DATA)/markov-eval.bin --eval-tokens 65536; \
	fi
	$(BUILD)/ztrain train --config configs/tiny-run.json

clean:
	rm -rf $(BUILD)
