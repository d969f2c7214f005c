# Makefile: builds moeserve (release and ASan+UBSan variants), its tests, fuzzers and benchmarks.
# Sources are picked up by directory, so adding a module is adding a file.

CC        ?= gcc
ifeq ($(origin CC),default)
CC        := gcc
endif
PKGS      := libmicrohttpd jansson openblas libutf8proc libsystemd vulkan
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
BASE      := -std=c17 -D_GNU_SOURCE -fopenmp -I. $(WARN) $(PKG_CFLAGS)
LIBS      := $(PKG_LIBS) -fopenmp -lm -lpthread

# Baseline code runs on any x86-64; SIMD files are compiled for their ISA and chosen at run time.
FLAGS_avx2   := -mavx2 -mfma -mf16c
FLAGS_avx512 := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni

MODE_rel  := -O2 -g
MODE_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DMOESERVE_TEST_HOOKS
LINK_asan := -fsanitize=address,undefined

# SIMD sources by the target's architecture: *_avx2.c / *_avx512.c for x86-64, *_neon.c for aarch64.
TARGET_MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(filter aarch64%,$(TARGET_MACHINE)),)
OTHER_ARCH_SRC := %_avx2.c %_avx512.c
else
OTHER_ARCH_SRC := %_neon.c
endif
LIB_SRC   := $(filter-out server/main.c $(OTHER_ARCH_SRC),$(wildcard engine/*.c kernels/*.c server/*.c))
TEST_SRC  := $(wildcard tests/unit/test_*.c)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)

prefix    ?= /usr/local
DESTDIR   ?=

.PHONY: all test test-unit bench bench-kernels bench-models install clean deps fuzz asan demo shaders loadtest

all: moeserve

moeserve: build/rel/moeserve
	ln -sf build/rel/moeserve moeserve

# -------------------------------------------------------------------- shaders ---
# One SPIR-V module per shader and weight type, as a C initialiser that engine/vk_shaders.c
# #includes into a static const uint32_t[].
GLSLC        ?= glslc
SHADER_TYPES := f32 f16 bf16 q8_0 q4_0 q4_K q5_K q6_K q2_K q3_K iq2_xxs iq2_xs iq2_s iq3_xxs \
                iq3_s iq4_nl iq4_xs mxfp4 q4_1 q5_0 q5_1 iq1_s iq1_m tq1_0 tq2_0 nvfp4
SHADER_INCS  := $(wildcard shaders/*.glsl)
SHADER_OUT   := $(foreach k,matvec matmul,$(SHADER_TYPES:%=build/shaders/$(k)_%.spv.h))
# The GPU operations of the forward pass (engine/vk_ops.c): three per weight type, the rest once.
OP_SHADERS   := rms_norm rope kv_store attention attention_merge router moe_group moe_combine elementwise act_round
OP_OUT       := $(foreach k,get_rows moe_matvec moe_matmul,$(SHADER_TYPES:%=build/shaders/$(k)_%.spv.h)) \
                $(OP_SHADERS:%=build/shaders/op_%.spv.h)

# Every shader that reduces with subgroup operations also as a shared-memory-only variant
# (-DVK_NO_SUBGROUPS), for devices without subgroup arithmetic: nosg_<name>.
NOSG_SHADER_OUT := $(SHADER_TYPES:%=build/shaders/nosg_matvec_%.spv.h)
NOSG_OP_OUT     := $(SHADER_TYPES:%=build/shaders/nosg_moe_matvec_%.spv.h) \
                   build/shaders/nosg_op_rms_norm.spv.h build/shaders/nosg_op_router.spv.h
SHADER_OUT += $(NOSG_SHADER_OUT)
OP_OUT     += $(NOSG_OP_OUT)

shaders: $(SHADER_OUT) $(OP_OUT)

build/shaders/matvec_%.spv.h: shaders/matvec.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DQTYPE_$* $< -o $@

build/shaders/matmul_%.spv.h: shaders/matmul.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DQTYPE_$* $< -o $@

build/shaders/get_rows_%.spv.h: shaders/get_rows.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DQTYPE_$* $< -o $@

build/shaders/moe_matvec_%.spv.h: shaders/moe_matvec.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DQTYPE_$* $< -o $@

build/shaders/moe_matmul_%.spv.h: shaders/moe_matmul.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DQTYPE_$* $< -o $@

build/shaders/op_%.spv.h: shaders/%.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c $< -o $@

build/shaders/nosg_matvec_%.spv.h: shaders/matvec.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DVK_NO_SUBGROUPS -DQTYPE_$* $< -o $@

build/shaders/nosg_moe_matvec_%.spv.h: shaders/moe_matvec.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DVK_NO_SUBGROUPS -DQTYPE_$* $< -o $@

build/shaders/nosg_op_%.spv.h: shaders/%.comp $(SHADER_INCS) Makefile
	@mkdir -p $(dir $@)
	@echo "GLSL $@"
	@$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -DVK_NO_SUBGROUPS $< -o $@

build/rel/engine/vk_shaders.o build/asan/engine/vk_shaders.o: $(SHADER_OUT)
build/rel/engine/vk_ops_shaders.o build/asan/engine/vk_ops_shaders.o: $(OP_OUT)

# ---------------------------------------------------------------- build rules ---
define variant
build/$(1)/%.o: %.c Makefile
	@mkdir -p $$(dir $$@)
	@echo "CC [$(1)] $$<"
	@$$(CC) -MMD -MP $$(BASE) $$(MODE_$(1)) $$(if $$(findstring _avx512,$$<),$$(FLAGS_avx512),$$(if $$(findstring _avx2,$$<),$$(FLAGS_avx2))) -c $$< -o $$@

build/$(1)/libmoeserve.a: $$(LIB_SRC:%.c=build/$(1)/%.o)
	@rm -f $$@
	@ar rcs $$@ $$^

build/$(1)/moeserve: build/$(1)/server/main.o build/$(1)/libmoeserve.a
	@echo "LD [$(1)] $$@"
	@$$(CC) $$^ -o $$@ $$(LINK_$(1)) $$(LIBS)

build/$(1)/tests/unit/%: build/$(1)/tests/unit/%.o build/$(1)/libmoeserve.a
	@$$(CC) $$^ -o $$@ $$(LINK_$(1)) $$(LIBS)

build/$(1)/tests/bench/%: build/$(1)/tests/bench/%.o build/$(1)/libmoeserve.a
	@$$(CC) $$^ -o $$@ $$(LINK_$(1)) $$(LIBS)
endef
$(eval $(call variant,rel))
$(eval $(call variant,asan))

.SECONDARY:
-include $(shell find build -name '*.d' 2>/dev/null)

UNIT_rel  := $(TEST_SRC:tests/unit/%.c=build/rel/tests/unit/%)
UNIT_asan := $(TEST_SRC:tests/unit/%.c=build/asan/tests/unit/%)

asan: $(UNIT_asan)

# ----------------------------------------------------------------------- demo ---
DEMO_MODEL := build/demo/tiny-qwen3moe.gguf
$(DEMO_MODEL): build/rel/moeserve
	@mkdir -p $(dir $@)
	build/rel/moeserve synth --tiny -o $@

DEMO_PORT ?= 8080
demo: moeserve $(DEMO_MODEL)
	@echo
	@echo "moeserve is starting on http://127.0.0.1:$(DEMO_PORT) with a small random-weight model. Try:"
	@echo
	@echo "  curl http://127.0.0.1:$(DEMO_PORT)/v1/chat/completions -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}],\"max_tokens\":16}'"
	@echo
	@echo "(Ctrl-C stops it. The model's weights are random: expect fluent-looking nonsense.)"
	@echo
	build/rel/moeserve serve -m $(DEMO_MODEL) --port $(DEMO_PORT)

# ---------------------------------------------------------------------- tests ---
# Unit tests run under ASan+UBSan; integration tests drive the sanitizer-built binary.
# The model accuracy tests also run in the release build: under ASan they keep to short prompts.
ACCURACY := test_qwen3moe test_qwen3next test_ppl_models test_vk_model
# Integration tests start the real (sanitizer-built) server on loopback and call it.
INTEGRATION := $(wildcard tests/integration/test_*.sh)
test: asan build/asan/moeserve build/rel/moeserve build/rel/loadgen $(ACCURACY:%=build/rel/tests/unit/%)
	@tests/run.sh $(UNIT_asan) $(ACCURACY:%=build/rel/tests/unit/%) $(INTEGRATION)
	@$(MAKE) --no-print-directory test-neon

test-unit: $(UNIT_rel)
	@tests/run.sh $(UNIT_rel)

.PHONY: test-integration
test-integration: build/asan/moeserve build/rel/moeserve build/rel/loadgen
	@tests/run.sh $(INTEGRATION)

# ----------------------------------------------------------------- aarch64 ---
# The NEON kernels, cross-compiled and run under qemu-aarch64 (packages gcc-aarch64-linux-gnu,
# qemu-user-static): only the kernel files and the GGUF reader, linked statically, so no
# aarch64 copies of the server's libraries are needed. The same tests run natively on aarch64.
NEON_CC   ?= aarch64-linux-gnu-gcc
NEON_RUN  ?= qemu-aarch64-static
NEON_LIB  := kernels/qkernels.c kernels/qtypes.c kernels/q_basic.c kernels/q_basic_neon.c kernels/q_legacy.c \
             kernels/q_kquants.c kernels/q_fp.c kernels/q_iq.c kernels/q_iq_neon.c kernels/iq_grids.c kernels/ops.c engine/gguf.c engine/gguf_meta.c
NEON_SYSROOT ?= /usr/aarch64-linux-gnu
# test_quants: every type's dequantization and the activation quantizers bit-exact on aarch64 too
NEON_NAMES := test_neon test_simd_digest test_quants
NEON_TESTS := $(NEON_NAMES:%=build/neon/rel/%) $(NEON_NAMES:%=build/neon/asan/%)
build/neon/rel/test_neon build/neon/asan/test_neon: tests/neon/test_neon.c
build/neon/rel/test_simd_digest build/neon/asan/test_simd_digest: tests/unit/test_simd_digest.c
build/neon/rel/test_quants build/neon/asan/test_quants: tests/unit/test_quants.c
NEON_MODE_rel  := -O2 -g -static
# ASan + UBSan as in the x86 build; linked dynamically (the sanitizer runtimes need it), run with
# the cross sysroot. LeakSanitizer needs ptrace, which qemu-user lacks: leaks are left to the
# x86 run of the same shared code.
NEON_MODE_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
$(NEON_TESTS): $(NEON_LIB) $(wildcard kernels/*.h engine/gguf.h tests/*.h) Makefile
	@mkdir -p $(dir $@)
	@echo "CC [aarch64 $(word 3,$(subst /, ,$@))] $@"
	@$(NEON_CC) -std=c17 -D_GNU_SOURCE -I. $(WARN) $(NEON_MODE_$(word 3,$(subst /, ,$@))) $(filter %.c,$^) -o $@ -lm -lpthread

.PHONY: test-neon
test-neon: $(NEON_TESTS) build/a64/moeserve
	@for t in $(NEON_TESTS); do echo "== $$t (aarch64, $(NEON_RUN))"; \
		ASAN_OPTIONS=detect_leaks=0 $(NEON_RUN) -L $(NEON_SYSROOT) $$t || exit 1; done
	@tests/neon/test_a64_server.sh build/a64/moeserve build/rel/moeserve

# The whole server cross-built for aarch64 against Debian's arm64 libraries (multiarch, `make
# deps`); tests/neon/test_a64_server.sh runs it under qemu beside the x86 build.
A64_PKG_CONFIG := env PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig pkg-config
A64_SRC := $(filter-out %_avx2.c %_avx512.c,$(wildcard engine/*.c kernels/*.c server/*.c))
build/a64/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@echo "CC [aarch64] $<"
	@$(NEON_CC) -MMD -MP -std=c17 -D_GNU_SOURCE -fopenmp -I. $(WARN) $(shell $(A64_PKG_CONFIG) --cflags $(PKGS)) \
		-O2 -g -c $< -o $@
build/a64/engine/vk_shaders.o: $(SHADER_OUT)
build/a64/engine/vk_ops_shaders.o: $(OP_OUT)
build/a64/moeserve: $(A64_SRC:%.c=build/a64/%.o)
	@echo "LD [aarch64] $@"
	@$(NEON_CC) $^ -o $@ $(shell $(A64_PKG_CONFIG) --libs $(PKGS)) -fopenmp -lm -lpthread

# ---------------------------------------------------------------------- tools ---
build/rel/loadgen: tools/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_GNU_SOURCE -O2 $(WARN) $< -o $@ -lpthread -lm

# A longer load run by hand: make loadtest LOAD_SECONDS=60
loadtest: build/rel/moeserve build/rel/loadgen
	@LOAD_SECONDS=$${LOAD_SECONDS:-20} tests/integration/test_load.sh

# ----------------------------------------------------------------- benchmarks ---
bench-kernels: build/rel/tests/bench/bench_kernels
	build/rel/tests/bench/bench_kernels

bench-models: build/rel/tests/bench/bench_models
	build/rel/tests/bench/bench_models

# The Vulkan shaders' throughput, then the whole synthetic Qwen3-30B-A3B (11.4 GB written to
# $TMPDIR) with all experts on the GPU and with 24 layers' on the CPU: on a GPU only (skipped with
# a note on lavapipe or without a driver).
.PHONY: bench-vulkan
bench-vulkan: build/rel/tests/bench/bench_vulkan build/rel/tests/bench/bench_vk_model
	@build/rel/tests/bench/bench_vulkan -G || echo "bench_vulkan: no usable Vulkan device: skipped"
	@build/rel/tests/bench/bench_vk_model -G -c 24

bench: bench-kernels bench-models bench-vulkan

# ------------------------------------------------------------------- fuzzing ---
FUZZ_FLAGS := -std=c17 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
build/fuzz/fuzz_gguf: tests/fuzz/fuzz_gguf.c engine/gguf.c engine/gguf_meta.c engine/arch.c \
		engine/validate.c kernels/qtypes.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) $^ -o $@

fuzz: build/fuzz/fuzz_gguf

# About a minute of fuzzing from the committed seeds (CI); new inputs go to build/fuzz/corpus.
FUZZ_SECONDS ?= 60
.PHONY: fuzz-run
fuzz-run: build/fuzz/fuzz_gguf
	@mkdir -p build/fuzz/corpus
	build/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
		-print_final_stats=1 build/fuzz/corpus tests/fuzz/seeds

# -------------------------------------------------------------- install/deps ---
sysconfdir ?= /etc
unitdir    ?= /etc/systemd/system

install: build/rel/moeserve
	install -D -m 0755 build/rel/moeserve $(DESTDIR)$(prefix)/bin/moeserve
	install -d $(DESTDIR)$(unitdir)
	sed 's|/usr/local/bin/moeserve|$(prefix)/bin/moeserve|' systemd/moeserve.service >$(DESTDIR)$(unitdir)/moeserve.service
	install -d $(DESTDIR)$(prefix)/share/doc/moeserve
	install -m 0644 docs/*.md $(DESTDIR)$(prefix)/share/doc/moeserve/
	@if [ -e $(DESTDIR)$(sysconfdir)/moeserve/moeserve.conf ]; then \
		echo "keeping existing $(DESTDIR)$(sysconfdir)/moeserve/moeserve.conf"; \
	else \
		install -D -m 0644 config/moeserve.conf $(DESTDIR)$(sysconfdir)/moeserve/moeserve.conf; \
	fi

DEB_PKGS := build-essential pkg-config clang libclang-rt-14-dev curl ca-certificates netcat-openbsd python3 \
	libmicrohttpd-dev libjansson-dev libopenblas-openmp-dev libutf8proc-dev \
	libvulkan-dev glslc glslang-tools spirv-tools mesa-vulkan-drivers vulkan-tools \
	vulkan-validationlayers libsystemd-dev \
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
# The same libraries for arm64 (the whole-server aarch64 build of make test-neon).
DEB_PKGS_ARM64 := libmicrohttpd-dev:arm64 libjansson-dev:arm64 libopenblas-openmp-dev:arm64 libutf8proc-dev:arm64 \
	libvulkan-dev:arm64 libsystemd-dev:arm64
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

deps:
	$(SUDO) dpkg --add-architecture arm64
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEB_PKGS) $(DEB_PKGS_ARM64)
	@# node and npm (for the official openai client in the integration tests) may come from elsewhere
	command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm

clean:
	rm -rf build moeserve
