# easyrec — plain GNU Makefile.
#   make              library, CLI (build/easyrec)
#   make test         build and run every test (tests/run.sh prints "N passed, N failed")
#   make sanitize     the same tests under -fsanitize=address,undefined (build-asan/)
#   make fuzz         libFuzzer targets (clang) in build-fuzz/; make fuzz-run runs each briefly
#   make bench        benchmarks (bench/README.md); needs the peers installed by tools/setup.sh --bench
#   make MPI=1        also Open MPI data parallelism (pkg-config ompi-c), built in build-mpi/
#   make test-mpi     MPI=1 build + the mpirun tests (tests/mpi_*.c; skipped without mpirun)
#   OMP=0 disables OpenMP; NATIVE=1 adds -march=native; WERROR=1 adds -Werror.
CC      ?= cc
ifeq ($(MPI),1)
BUILD   ?= build-mpi
endif
BUILD   ?= build
OPT     ?= -O2
PKGS    := openblas jansson libutf8proc libzip
PKGS    += libcurl
PKGS    += libmicrohttpd sqlite3
PKGS    += cairo fontconfig
ifeq ($(MPI),1)
PKGS    += ompi-c
CFLAGS  += -DER_MPI
endif
# Install missing Debian build dependencies first (fresh machine), before pkg-config runs.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
ifneq ($(SKIP_SETUP),1)
SETUP_STATUS := $(shell tools/setup.sh $(if $(filter 1,$(MPI)),--mpi) 1>&2 && echo ok)
ifneq ($(SETUP_STATUS),ok)
$(error tools/setup.sh failed: install gcc make pkg-config libopenblas-dev libjansson-dev libutf8proc-dev libzip-dev)
endif
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -fopenmp-simd -Wall -Wextra -Wno-unused-parameter -Iinclude -Isrc $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lmvec -lm -lpthread
ifneq ($(OMP),0)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
endif
ifeq ($(NATIVE),1)
CFLAGS  += -march=native
endif
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif
ifdef SAN
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(sort $(wildcard src/core/*.c src/io/*.c src/tokenizer/*.c src/model/*.c src/data/*.c src/eval/*.c src/train/*.c))
LIB_SRC  += $(sort $(wildcard src/kernels/*.c))
LIB_SRC  += $(sort $(wildcard src/serve/*.c))
LIB_SRC  += $(sort $(wildcard src/synth/*.c))
LIB_SRC  += $(sort $(wildcard src/hub/*.c))
LIB_SRC  += $(sort $(wildcard src/profile/*.c))
LIB_SRC  += $(sort $(wildcard src/viz/*.c))
LIB_SRC  += $(sort $(wildcard src/cf/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      := $(BUILD)/libeasyrec.a
HDRS     := $(wildcard include/*.h src/*/*.h tests/*.h)

.PHONY: all test test-mpi sanitize fuzz fuzz-run bench demo clean fixtures
all: $(BUILD)/easyrec

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the AdamW pass vectorises only when sqrtf needs no errno check (src/train/optim.c)
$(BUILD)/src/train/optim.o: CFLAGS += -fno-math-errno

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/easyrec: $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# tests read staged fixtures (tools/stage_fixtures.sh) from ER_FIXTURES
FIXTURE_IN := $(shell find tests/fixtures -name '*.in' -type f 2>/dev/null)
$(BUILD)/fixtures/.stamp: $(FIXTURE_IN) tools/stage_fixtures.sh
	rm -rf $(BUILD)/fixtures && mkdir -p $(BUILD)/fixtures
	tools/stage_fixtures.sh tests/fixtures $(CURDIR)/$(BUILD)/fixtures
	@touch $@

$(BUILD)/tests/%: tests/%.c $(LIB) $(HDRS) $(BUILD)/fixtures/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DER_FIXTURES='"$(BUILD)/fixtures"' $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# test helper binaries (not run as tests): the fake Hugging Face Hub of test_pull
TEST_HELPERS := $(BUILD)/tests/fake_hub
$(BUILD)/tests/fake_hub: LDLIBS += $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
$(BUILD)/tests/test_pull: $(BUILD)/tests/fake_hub
# the fake OpenAI-compatible server of test_profile and bench/bench_profile.sh
TEST_HELPERS += $(BUILD)/tests/fake_llm
$(BUILD)/tests/fake_llm: LDLIBS += $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
$(BUILD)/tests/test_profile: $(BUILD)/tests/fake_llm

test: $(BUILD)/easyrec $(TESTS) $(TEST_HELPERS)
	@EASYREC_BIN=$(BUILD)/easyrec tests/run.sh $(TESTS)

include mk/install.mk

# the MPI tests: programs tests/mpi_*.c (not part of `make test`), each running mpirun itself
MPI_TESTS := $(patsubst tests/%.c,build-mpi/tests/%,$(sort $(wildcard tests/mpi_*.c)))
test-mpi:
	$(MAKE) MPI=1 BUILD=build-mpi build-mpi/easyrec $(MPI_TESTS)
	@EASYREC_BIN=build-mpi/easyrec tests/run.sh $(MPI_TESTS)

sanitize:
	$(MAKE) BUILD=build-asan SAN=1 OPT=-O1 test

FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined
fuzz:
	@mkdir -p $(FUZZ_BUILD)
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "clang $$f"; clang $(FUZZ_CFLAGS) -o $(FUZZ_BUILD)/$$n $$f $(LIB_SRC) $(PKG_LIBS) -lm -lpthread || exit 1; done
FUZZ_SECONDS ?= 30
fuzz-run: fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); mkdir -p $(FUZZ_BUILD)/corpus-$$n; \
	  seeds=fuzz/seeds/$$n; [ -d $$seeds ] || seeds=; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  $(FUZZ_BUILD)/$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 $(FUZZ_BUILD)/corpus-$$n $$seeds 2>&1 | grep -E "^(#[0-9]+.*DONE|Done|==[0-9]+==ERROR|SUMMARY)" ; done

demo: $(BUILD)/easyrec
	@tools/demo.sh

bench: $(BUILD)/easyrec
	@bench/run_all.sh

fixtures:
	/usr/bin/python3 tools/gen_fixtures.py tests/fixtures
	/usr/bin/python3 tools/gen_train_fixture.py tests/fixtures
	/usr/bin/python3 tools/cf_reference.py fixture tests/fixtures/cf/reference.json.in

clean:
	rm -rf build build-asan build-fuzz
