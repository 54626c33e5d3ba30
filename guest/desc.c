/*
 * Descriptor tables: one GDT with a TSS descriptor per CPU (the TSS
 * gives the ring-0 stack for interrupts from ring 3) and one IDT shared
 * by all CPUs. Only the vectors in use get gates; anything else raises
 * #GP and ends in the exception dump.
 */
#include "kernel.h"

struct tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} __packed;

struct idt_gate {
	u16 off_lo;
	u16 sel;
	u8 ist;
	u8 type;
	u16 off_mid;
	u32 off_hi;
	u32 reserved;
} __packed;

struct desc_ptr {
	u16 limit;
	u64 base;
} __packed;

#define GATE_INTR 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define GATE_USER 0x60 /* DPL 3: reachable with int from ring 3 */

u64 gdt[GDT_FIXED_ENTRIES + 2 * MAX_CPUS] __aligned(16) = {
    [SEL_KCODE / 8] = 0x00af9a000000ffff, /* 64-bit code, DPL 0 */
    [SEL_KDATA / 8] = 0x00cf92000000ffff,
    [SEL_UDATA / 8] = 0x00cff2000000ffff, /* DPL 3 */
    [SEL_UCODE / 8] = 0x00affa000000ffff, /* 64-bit code, DPL 3 */
};

/* Also loaded by boot.S in 32-bit mode, which reads limit + base[31:0]. */
struct desc_ptr gdt_ptr = {sizeof(gdt) - 1, (u64)gdt};

static struct idt_gate idt[256] __aligned(16);
static struct tss tss[MAX_CPUS] __aligned(16);

extern char exc_stubs[], timer_isr[], syscall_isr[], spurious_isr[];

static void set_gate(unsigned vec, const void *handler, u8 type)
{
	u64 a = (u64)handler;

	idt[vec] = (struct idt_gate){
	    .off_lo = (u16)a,
	    .sel = SEL_KCODE,
	    .type = type,
	    .off_mid = (u16)(a >> 16),
	    .off_hi = (u32)(a >> 32),
	};
}

void desc_init(void)
{
	for (unsigned v = 0; v < 32; v++)
		set_gate(v, exc_stubs + 16 * v, GATE_INTR);
	set_gate(VEC_PIC_BASE + 7, spurious_isr, GATE_INTR);
	set_gate(VEC_PIC_BASE + 15, spurious_isr, GATE_INTR);
	set_gate(VEC_TIMER, timer_isr, GATE_INTR);
	set_gate(VEC_SYSCALL, syscall_isr, GATE_INTR | GATE_USER);
	set_gate(VEC_SYSCALL_ALT, syscall_isr, GATE_INTR | GATE_USER);
	set_gate(VEC_SPURIOUS, spurious_isr, GATE_INTR);
}

/* Per CPU: fill in and load this CPU's TSS, load the shared IDT. */
void desc_load(unsigned cpu)
{
	struct desc_ptr idt_ptr = {sizeof(idt) - 1, (u64)idt};
	u64 base = (u64)&tss[cpu], limit = sizeof(struct tss) - 1;
	unsigned slot = GDT_FIXED_ENTRIES + 2 * cpu;

	tss[cpu].rsp[0] = kstack_top(cpu);
	tss[cpu].iomap_base = sizeof(struct tss); /* no I/O bitmap */
	gdt[slot] = (limit & 0xffff) | (base & 0xffffff) << 16 |
		    0x89ULL << 40 | /* present, 64-bit TSS */
		    ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[slot + 1] = base >> 32;

	asm volatile("lidt %0" : : "m"(idt_ptr));
	asm volatile("ltr %w0" : : "r"(SEL_TSS0 + 16 * cpu));
}
