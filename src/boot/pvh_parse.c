// SPDX-License-Identifier: GPL-2.0-only
/* ELF64 program headers and notes of a PVH kernel: untrusted input. */
#include "boot/pvh.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18

static bool pvh_elf_header(const uint8_t *image, size_t size, Elf64_Ehdr *eh)
{
	if (size < sizeof(*eh))
		return false;
	memcpy(eh, image, sizeof(*eh));
	return memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
	       eh->e_ident[EI_DATA] == ELFDATA2LSB && eh->e_machine == EM_X86_64;
}

static bool pvh_phdr(const uint8_t *image, size_t size, const Elf64_Ehdr *eh, unsigned i,
		     Elf64_Phdr *ph)
{
	uint64_t off = eh->e_phoff + (uint64_t)i * eh->e_phentsize;

	if (eh->e_phentsize < sizeof(*ph) || off > size || size - off < sizeof(*ph))
		return false;
	memcpy(ph, image + off, sizeof(*ph));
	return true;
}

/* The PHYS32_ENTRY note in PT_NOTE @ph; 0 if none. */
static uint32_t pvh_note_entry(const uint8_t *image, size_t size, const Elf64_Phdr *ph)
{
	uint64_t off = ph->p_offset, end;

	if (off > size || ph->p_filesz > size - off)
		return 0;
	end = off + ph->p_filesz;
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr n;
		uint64_t name_len, desc_len;

		memcpy(&n, image + off, sizeof(n));
		off += sizeof(n);
		name_len = ((uint64_t)n.n_namesz + 3) & ~3ull;
		desc_len = ((uint64_t)n.n_descsz + 3) & ~3ull;
		if (name_len > end - off || desc_len > end - off - name_len)
			return 0;
		if (n.n_type == XEN_ELFNOTE_PHYS32_ENTRY && n.n_namesz == 4 &&
		    memcmp(image + off, "Xen", 4) == 0 && n.n_descsz >= 4) {
			uint32_t entry;
			memcpy(&entry, image + off + name_len, 4);
			return entry;
		}
		off += name_len + desc_len;
	}
	return 0;
}

static uint32_t pvh_find_entry(const uint8_t *image, size_t size, const Elf64_Ehdr *eh)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		uint32_t entry;

		if (!pvh_phdr(image, size, eh, i, &ph))
			return 0;
		if (ph.p_type == PT_NOTE && (entry = pvh_note_entry(image, size, &ph)))
			return entry;
	}
	return 0;
}

bool pvh_probe(const uint8_t *image, size_t size)
{
	Elf64_Ehdr eh;

	return pvh_elf_header(image, size, &eh) && pvh_find_entry(image, size, &eh) != 0;
}

int pvh_parse(const uint8_t *image, size_t size, struct pvh_image *out, struct ferr *err)
{
	Elf64_Ehdr eh;

	memset(out, 0, sizeof(*out));
	if (!pvh_elf_header(image, size, &eh))
		return ferr_set(err, -ENOEXEC, "not an ELF64 x86-64 image");
	out->entry = pvh_find_entry(image, size, &eh);
	if (!out->entry)
		return ferr_set(err, -ENOEXEC,
				"no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): a kernel built "
				"without CONFIG_PVH");
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		struct pvh_segment *sg;

		if (!pvh_phdr(image, size, &eh, i, &ph))
			return ferr_set(err, -ENOEXEC, "program header %u lies outside the file",
					i);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
			return ferr_set(err, -ENOEXEC, "segment %u lies outside the file", i);
		if (ph.p_filesz > ph.p_memsz)
			return ferr_set(err, -ENOEXEC, "segment %u: file size above memory size",
					i);
		if (ph.p_paddr < 0x100000 || ph.p_paddr + ph.p_memsz < ph.p_paddr)
			return ferr_set(err, -ENOEXEC,
					"segment %u loads at %#llx, below 1 MiB or wrapping", i,
					(unsigned long long)ph.p_paddr);
		if (out->nsegments == PVH_MAX_SEGMENTS)
			return ferr_set(err, -ENOEXEC, "more than %d loadable segments",
					PVH_MAX_SEGMENTS);
		sg = &out->segments[out->nsegments++];
		sg->paddr = ph.p_paddr;
		sg->file_offset = ph.p_offset;
		sg->file_size = ph.p_filesz;
		sg->mem_size = ph.p_memsz;
	}
	if (!out->nsegments)
		return ferr_set(err, -ENOEXEC, "no loadable segment");
	return 0;
}
