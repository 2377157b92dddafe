# lupe build. GNU make; one static library per part, then the programs.
#
#   make                 debug build of everything (build/debug/)
#   make BUILD=release   optimised build (build/release/)
#   make BUILD=asan      AddressSanitizer + UndefinedBehaviorSanitizer (build/asan/)
#   make test            unit and command tests, normally and under ASan+UBSan
#   make demo            the main job on embedded defaults
#   make fuzz FUZZ_SECONDS=600   libFuzzer on every parser, each for that long
#   make bench           release build of bench/*.c, then runs bench_engine
#
# Warnings are errors when CI is set (or WERROR=1).

BUILD ?= debug
O ?= build/$(BUILD)
CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif

GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
GIT_DIRTY := $(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)

PKGS := libjpeg libpng sqlite3 libsodium jansson libexif expat
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# oneDNN (Debian's libdnnl-dev has no pkg-config file); it runs on OpenMP,
# whose thread count the engine sets, hence libgomp too.
PKG_LIBS += -ldnnl -lgomp

WARN := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wcast-align -Wwrite-strings -Wundef -Wno-unused-parameter
WERROR ?= $(if $(CI),1,0)
ifeq ($(WERROR),1)
WARN += -Werror
endif

CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(WARN) $(PKG_CFLAGS) \
                 -DLUPE_GIT_COMMIT=\"$(GIT_COMMIT)$(GIT_DIRTY)\" -DLUPE_BUILD_TYPE=\"$(BUILD)\" \
                 -fno-strict-aliasing -pthread -MMD -MP

ifeq ($(BUILD),release)
CFLAGS_BUILD := -O2 -g -DNDEBUG -march=x86-64-v3
else ifeq ($(BUILD),asan)
CFLAGS_BUILD := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_BUILD := -fsanitize=address,undefined
else ifeq ($(BUILD),debug)
CFLAGS_BUILD := -O0 -g3
else
$(error BUILD must be debug, release or asan)
endif

# V=1 shows the full commands.
Q := $(if $(V),,@)

ALL_CFLAGS := $(CFLAGS_COMMON) $(CFLAGS_BUILD) $(CFLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS_BUILD) $(LDFLAGS)

# Parts, in dependency order (each may use those before it).
PARTS := base img formats store label dataset engine det eval synth train registry
lib_srcs = $(wildcard src/$(1)/*.c)
lib_objs = $(patsubst src/%.c,$(O)/obj/%.o,$(call lib_srcs,$(1)))
lib_file = $(O)/lib/liblupe_$(1).a

LIBS_ALL := $(foreach p,$(PARTS),$(call lib_file,$(p)))
# Link order: most dependent first.
LINK_LIBS := $(call lib_file,registry) $(call lib_file,train) $(call lib_file,synth) $(call lib_file,eval) $(call lib_file,dataset) $(call lib_file,label) $(call lib_file,store) $(call lib_file,formats) $(call lib_file,img) $(call lib_file,det) $(call lib_file,engine) $(call lib_file,base) $(PKG_LIBS) -lm

CLI_SRCS := $(wildcard src/cli/*.c)
CLI_OBJS := $(patsubst src/%.c,$(O)/obj/%.o,$(CLI_SRCS))
LUPE := $(O)/bin/lupe

TEST_SRCS := $(wildcard tests/*/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(O)/tests/%,$(TEST_SRCS))
TEST_LIB_SRCS := $(wildcard tests/lib/*.c)
TEST_LIB_OBJS := $(patsubst tests/%.c,$(O)/obj/tests/%.o,$(TEST_LIB_SRCS))

.PHONY: all libs test test-unit check-deps demo fuzz golden golden-det golden-ap bench clean format help
all: $(LUPE) $(TEST_BINS)

libs: $(LIBS_ALL)

$(O)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The fast element-wise, batch-norm and pooling ops run on OpenMP threads
# (libgomp, linked above for oneDNN); only that file needs the pragmas.
$(O)/obj/engine/fast_ops.o: ALL_CFLAGS += -fopenmp
# Synthetic tags are pinned to the byte: no fused multiply-adds anywhere.
$(O)/obj/synth/%.o: ALL_CFLAGS += -ffp-contract=off

$(O)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests $(shell pkg-config --cflags cmocka) -c $< -o $@

define lib_rule
$(call lib_file,$(1)): $(call lib_objs,$(1))
	@mkdir -p $$(dir $$@)
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach p,$(PARTS),$(eval $(call lib_rule,$(p))))

$(LUPE): $(CLI_OBJS) $(LIBS_ALL)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) $(CLI_OBJS) $(LINK_LIBS) -o $@

$(O)/tests/%: $(O)/obj/tests/%.o $(TEST_LIB_OBJS) $(LIBS_ALL)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) $< $(TEST_LIB_OBJS) $(LINK_LIBS) $(shell pkg-config --libs cmocka) -o $@

# The README's test command: unit and command tests in the debug build, then
# the same tests under ASan+UBSan. tests/run prints the closing summary line.
test:
	@scripts/deps test
	@$(MAKE) --no-print-directory BUILD=debug all
	@$(MAKE) --no-print-directory BUILD=asan all
	@tests/run build/debug build/asan

# Runs the tests of one build only (BUILD=...), without the sanitizer pass.
test-unit: all
	@tests/run $(O)

demo:
	@scripts/deps build
	@$(MAKE) --no-print-directory BUILD=release $(LUPE:build/$(BUILD)/%=build/release/%)
	@scripts/demo build/release/bin/lupe

# One benchmark program per file: bench/NAME.c -> bin/bench_NAME.
BENCH_SRCS := $(wildcard bench/*.c)
$(O)/obj/bench/%.o: bench/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/bin/bench_%: $(O)/obj/bench/%.o $(LIBS_ALL)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) $< $(LINK_LIBS) -o $@

# The engine benchmark in one command: convolution GFLOP/s against the
# measured peak, then one YOLOv8n training step against PyTorch 1.13.
bench:
	@scripts/deps bench
	@$(MAKE) --no-print-directory BUILD=release O=build/release $(BENCH_SRCS:bench/%.c=build/release/bin/bench_%)
	@build/release/bin/bench_engine
	@build/release/bin/bench_step --imgsz 480 --batch 16 --steps 3

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	@scripts/deps fuzz
	@scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Regenerates the engine's PyTorch golden file (needs Debian's python3-torch;
# only when the golden network or the format changes; the file is committed).
golden:
	@dpkg-query -W -f='$${Status}' python3-torch 2>/dev/null | grep -q "ok installed" || \
	    { echo "make golden: needs python3-torch (apt-get install python3-torch)"; exit 1; }
	/usr/bin/python3 tools/ref/golden.py tests/engine/data/golden.ckpt

# Regenerates the detector loss's golden file (YOLOv8n, one training step;
# see docs/detector.md); the same condition applies.
golden-det:
	@dpkg-query -W -f='$${Status}' python3-torch 2>/dev/null | grep -q "ok installed" || \
	    { echo "make golden-det: needs python3-torch (apt-get install python3-torch)"; exit 1; }
	/usr/bin/python3 tools/ref/det_loss.py tests/det/data/det_loss.ckpt

# Regenerates the evaluation oracle's cases and expected metrics (standard
# library Python only; the file is committed).
golden-ap:
	/usr/bin/python3 tools/ref/ap.py tests/eval/data/ap_case.json

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

help:
	@sed -n '1,12p' Makefile

-include $(shell find $(O) -name '*.d' 2>/dev/null)
