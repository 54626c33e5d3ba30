// SPDX-License-Identifier: GPL-2.0-only
/*
 * Runs a libFuzzer target over files without libFuzzer, with any compiler:
 *   fuzz_stream_replay FILE|DIR...
 * Every regular file (directories: their entries, in name order) goes
 * through LLVMFuzzerTestOneInput() once.  A crash is the failure; finding
 * no file at all is one too, so that a mistyped path cannot pass.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		perror(path);
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			uint8_t *p = realloc(data, cap);
			if (!p) {
				fclose(f);
				free(data);
				fprintf(stderr, "%s: out of memory\n", path);
				return -1;
			}
			data = p;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(data);
		fprintf(stderr, "%s: read error\n", path);
		return -1;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int only_files(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
	unsigned ran = 0, errors = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += run_file(argv[i]) < 0;
			ran++;
			continue;
		}
		struct dirent **names;
		int n = scandir(argv[i], &names, only_files, alphasort);
		if (n < 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		for (int k = 0; k < n; k++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				errors += run_file(path) < 0;
				ran++;
			}
			free(names[k]);
		}
		free(names);
	}
	printf("replayed %u inputs, %u unreadable\n", ran, errors);
	return ran == 0 || errors ? 1 : 0;
}
