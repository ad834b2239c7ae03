/*
 * A disassembler plugin for HotSpot's PrintAssembly (and so for JMH's perfasm profiler), built on the
 * Capstone library: HotSpot loads hsdis-<arch>.so from the library path and calls
 * decode_instructions_virtual for each range of compiled code it prints. Only for profiling segpool's
 * hot paths on a developer's machine; nothing in the build or the library uses it. See build.sh.
 */
#include <stdint.h>
#include <capstone/capstone.h>

#if defined(__x86_64__)
#define SEGPOOL_CS_ARCH CS_ARCH_X86
#define SEGPOOL_CS_MODE CS_MODE_64
#elif defined(__aarch64__)
#define SEGPOOL_CS_ARCH CS_ARCH_ARM64
#define SEGPOOL_CS_MODE CS_MODE_ARM
#else
#error "hsdis.c: only x86_64 and aarch64 are set up"
#endif

typedef void *(*event_fn)(void *, const char *, void *);
typedef int (*print_fn)(void *, const char *, ...);

void *decode_instructions_virtual(uintptr_t start_va, uintptr_t end_va, unsigned char *buffer,
                                  uintptr_t length, event_fn event, void *event_stream,
                                  print_fn print, void *print_stream, const char *options, int newline) {
    (void) start_va;
    (void) end_va;
    (void) options;
    csh handle;
    if (cs_open(SEGPOOL_CS_ARCH, SEGPOOL_CS_MODE, &handle) != CS_ERR_OK) {
        print(print_stream, "hsdis: capstone could not open a handle\n");
        return NULL;
    }
#if defined(__x86_64__)
    cs_option(handle, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
#endif
    cs_insn *insns;
    size_t count = cs_disasm(handle, buffer, length, (uint64_t) (uintptr_t) buffer, 0, &insns);
    for (size_t i = 0; i < count; i++) {
        /* HotSpot prints the address and its annotations around these two events */
        if (event != NULL) {
            event(event_stream, "insn", (void *) (uintptr_t) insns[i].address);
        }
        print(print_stream, "%s\t%s", insns[i].mnemonic, insns[i].op_str);
        if (event != NULL) {
            event(event_stream, "/insn", (void *) (uintptr_t) (insns[i].address + insns[i].size));
        }
        if (newline) {
            print(print_stream, "\n");
        }
    }
    if (count > 0) {
        cs_free(insns, count);
    }
    cs_close(&handle);
    return NULL;
}
