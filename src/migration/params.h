/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Migration parameters: one table with names (QEMU's where the meaning is
 * the same), types, defaults and bounds.  migrate-set-parameters,
 * query-migrate-parameters and the CLI all go through it, so a parameter
 * is added in exactly one place.
 */
#ifndef FERRY_MIGRATION_PARAMS_H
#define FERRY_MIGRATION_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum mig_on_timeout {
	MIG_ON_TIMEOUT_ABORT,	 /* VM keeps running on the source (default) */
	MIG_ON_TIMEOUT_POSTCOPY, /* switch to post-copy */
	MIG_ON_TIMEOUT_FORCE,	 /* switch over now; downtime unbounded */
};

#define MIG_PARAM_STR_MAX 256 /* bytes of a string parameter, its NUL included */

struct mig_params {
	uint64_t downtime_limit_ms; /* "downtime-limit": the guarantee */
	uint64_t max_bandwidth;	    /* "max-bandwidth": bytes/s, 0 = unlimited */
	uint64_t timeout_s;	    /* "timeout": 0 = none */
	uint64_t on_timeout;	    /* "on-timeout": enum mig_on_timeout */
	uint64_t max_attempts;	    /* "switchover-attempts": tries before failing */
	/* The policy's tunables (docs/policy.md), ferry's own names. */
	uint64_t margin_pct;	   /* "switchover-margin": % of the limit kept in reserve */
	uint64_t gain_pct;	   /* "pass-gain": another pass must cut the downtime by this % */
	uint64_t stall_passes;	   /* "stall-passes": pass ends without progress = not converging */
	uint64_t stall_pct;	   /* "stall-pct": what counts as progress, % */
	uint64_t max_passes;	   /* "max-passes": pre-copy pass budget */
	uint64_t x_load_delay_ms;  /* "x-load-delay": test only, destination delays its ACK */
	uint64_t x_go_delay_ms;	   /* "x-go-delay": test only, source waits between ACK and GO */
	uint64_t x_verified_pages; /* "x-verified-pages": test only, destination's page sink */
	uint64_t multifd;	   /* capability "multifd": parallel data channels */
	uint64_t multifd_channels; /* "multifd-channels": how many, with the capability */
	uint64_t x_multifd_cut;	   /* "x-multifd-cut": test only, cut data channel 1 */
	uint64_t postcopy_ram;	   /* capability "postcopy-ram": post-copy allowed */
	uint64_t postcopy_after_passes; /* "postcopy-after-passes": hybrid, 0 = policy decides */
	uint64_t
	    max_postcopy_bandwidth;    /* "max-postcopy-bandwidth": bulk after GO, B/s, 0 = none */
	uint64_t auto_converge;	       /* capability "auto-converge": throttle the guest */
	uint64_t cpu_throttle_initial; /* "cpu-throttle-initial": first level, % */
	uint64_t cpu_throttle_increment;   /* "cpu-throttle-increment": per pass, % */
	uint64_t max_cpu_throttle;	   /* "max-cpu-throttle": ceiling, % */
	uint64_t cpu_throttle_tailslow;	   /* "cpu-throttle-tailslow": bool */
	uint64_t postcopy_recover_timeout; /* "postcopy-recover-timeout": s paused, 0 = forever */
	char tls_creds[MIG_PARAM_STR_MAX]; /* "tls-creds": x509 directory; "": no TLS */
	char tls_hostname[MIG_PARAM_STR_MAX]; /* "tls-hostname": "": the URI's host */
};

enum mig_param_type {
	MIG_PARAM_U64,
	MIG_PARAM_ENUM, /* stored as u64, set and shown by name */
	MIG_PARAM_STR,	/* char[MIG_PARAM_STR_MAX], default ""; min/max bound its length */
	MIG_PARAM_CAP,	/* a capability (migrate-set-capabilities): u64 0 or 1 */
	MIG_PARAM_BOOL, /* a parameter set and shown as a JSON boolean: u64 0 or 1 */
};

struct mig_param_desc {
	const char *name;
	enum mig_param_type type;
	size_t offset; /* in struct mig_params */
	uint64_t dflt, min, max;
	const char *const *names; /* MIG_PARAM_ENUM: value -> name, NULL-terminated */
	const char *doc;
};

extern const struct mig_param_desc mig_param_table[];

void mig_params_init(struct mig_params *p);
const struct mig_param_desc *mig_param_find(const char *name);
uint64_t mig_param_get(const struct mig_params *p, const struct mig_param_desc *d);
/* Checks bounds; @value for enums is an index into d->names.  Not for strings. */
int mig_param_set(struct mig_params *p, const struct mig_param_desc *d, uint64_t value,
		  struct ferr *err);
/* MIG_PARAM_STR: the value, and setting it (length and characters checked). */
const char *mig_param_get_str(const struct mig_params *p, const struct mig_param_desc *d);
int mig_param_set_str(struct mig_params *p, const struct mig_param_desc *d, const char *value,
		      struct ferr *err);
/* Combinations this ferry cannot honour (on-timeout postcopy without post-copy). */
int mig_params_check(const struct mig_params *p, struct ferr *err);

/*
 * The policy's parameters from the operator's: the one conversion, used by
 * the engine and by anything that simulates it.  The defaults live in one
 * place (policy.h), which the table above refers to.
 */
struct policy_params;
void mig_params_policy(const struct mig_params *mp, struct policy_params *pp);

/* Enum by name; -EINVAL with the accepted names in @err. */
int mig_param_enum_value(const struct mig_param_desc *d, const char *name, uint64_t *value,
			 struct ferr *err);

#endif
