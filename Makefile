# ztrain: the README's commands.
#   make test  - install dependencies (apt), configure, build, run every CPU test
#   make run   - build and run the main job (the CPU training demo)
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

run: build
	$(BUILD)/ztrain demo

clean:
	rm -rf $(BUILD)
