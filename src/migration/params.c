// SPDX-License-Identifier: GPL-2.0-only
#include "migration/params.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migration/policy/policy.h"

static const char *const mig_on_timeout_names[] = {"abort", "postcopy", "force", NULL};

#define P(field) offsetof(struct mig_params, field)

const struct mig_param_desc mig_param_table[] = {
    {"downtime-limit", MIG_PARAM_U64, P(downtime_limit_ms),
     POLICY_DEFAULT_DOWNTIME_LIMIT_NS / 1000000, 1, POLICY_MAX_DOWNTIME_LIMIT_NS / 1000000, NULL,
     "longest the guest may be paused at switchover, in ms; a guarantee"},
    {"max-bandwidth", MIG_PARAM_U64, P(max_bandwidth), 0, 0, UINT64_MAX, NULL,
     "bytes per second the migration may use; 0 means unlimited"},
    {"timeout", MIG_PARAM_U64, P(timeout_s), 0, 0, 86400 * 7, NULL,
     "seconds after which on-timeout decides; 0 means no timeout"},
    {"on-timeout", MIG_PARAM_ENUM, P(on_timeout), MIG_ON_TIMEOUT_ABORT, 0, 2, mig_on_timeout_names,
     "abort, postcopy or force"},
    {"switchover-attempts", MIG_PARAM_U64, P(max_attempts), POLICY_DEFAULT_MAX_ATTEMPTS, 1, 100,
     NULL, "switchovers tried (each aborted if the limit would be missed) before failing"},
    {"switchover-margin", MIG_PARAM_U64, P(margin_pct), POLICY_DEFAULT_MARGIN_PCT, 0, 99, NULL,
     "% of the downtime limit kept for GO's flight and the destination's start"},
    {"pass-gain", MIG_PARAM_U64, P(gain_pct), POLICY_DEFAULT_GAIN_PCT, 0, 100, NULL,
     "another pass is run only if it cuts the predicted downtime by more than this %"},
    {"stall-passes", MIG_PARAM_U64, P(stall_passes), POLICY_DEFAULT_STALL_PASSES, 1, 1000, NULL,
     "pass ends without progress after which pre-copy is not converging"},
    {"stall-pct", MIG_PARAM_U64, P(stall_pct), POLICY_DEFAULT_STALL_PCT, 0, 99, NULL,
     "the remaining set must shrink by this % to count as progress"},
    {"max-passes", MIG_PARAM_U64, P(max_passes), POLICY_DEFAULT_MAX_PASSES, 1, 100000, NULL,
     "pre-copy passes after which a switchover that fits is taken"},
    {"x-load-delay", MIG_PARAM_U64, P(x_load_delay_ms), 0, 0, 60000, NULL,
     "test only: the destination waits this many ms before acknowledging the state"},
    {"x-go-delay", MIG_PARAM_U64, P(x_go_delay_ms), 0, 0, 60000, NULL,
     "test only: the source waits this many ms between the destination's ACK and GO"},
    {"x-verified-pages", MIG_PARAM_U64, P(x_verified_pages), 0, 0, 1, NULL,
     "test only: the destination places pages only after their record's checksum held "
     "(the post-copy path) instead of reading them straight into RAM"},
    {"multifd", MIG_PARAM_CAP, P(multifd), 0, 0, 1, NULL,
     "capability: pages travel on multifd-channels parallel connections besides the main one"},
    {"multifd-channels", MIG_PARAM_U64, P(multifd_channels), 2, 1, 16, NULL,
     "data connections used with the multifd capability (each with its own sender thread)"},
    {"x-multifd-cut", MIG_PARAM_U64, P(x_multifd_cut), 0, 0, UINT64_MAX, NULL,
     "test only: with multifd, the source cuts data channel 1 once it has sent this many "
     "KiB; 0: never"},
    {"postcopy-ram", MIG_PARAM_CAP, P(postcopy_ram), 0, 0, 1, NULL,
     "capability: the guest may start on the destination before every page arrived "
     "(migrate-start-postcopy, postcopy-after-passes, on-timeout postcopy, or the policy "
     "when pre-copy does not converge)"},
    {"postcopy-after-passes", MIG_PARAM_U64, P(postcopy_after_passes), POLICY_PASSES_OFF, 0,
     POLICY_PASSES_OFF, NULL,
     "with postcopy-ram: switch to post-copy after this many pre-copy passes (0: from the "
     "start); 4294967295 (the default): only when asked, on timeout, or when pre-copy does "
     "not converge"},
    {"max-postcopy-bandwidth", MIG_PARAM_U64, P(max_postcopy_bandwidth), 0, 0, UINT64_MAX, NULL,
     "bytes per second for the background page stream after the switch to post-copy (page "
     "requests are never capped); 0 means unlimited"},
    {"postcopy-recover-timeout", MIG_PARAM_U64, P(postcopy_recover_timeout), 0, 0, 31536000, NULL,
     "seconds a post-copy whose connection broke waits in postcopy-paused for migrate-recover "
     "and migrate resume before it fails, losing the guest; 0 (the default): until the "
     "operator acts"},
    {"auto-converge", MIG_PARAM_CAP, P(auto_converge), 0, 0, 1, NULL,
     "capability: when pre-copy does not converge and post-copy is not taken, slow the "
     "guest's vCPUs down (cpu-throttle-initial, then cpu-throttle-increment per pass that "
     "still does not converge, up to max-cpu-throttle) until it does"},
    {"cpu-throttle-initial", MIG_PARAM_U64, P(cpu_throttle_initial),
     POLICY_DEFAULT_THROTTLE_INITIAL, 1, 99, NULL,
     "with auto-converge: % of time the vCPUs sleep once pre-copy is found not converging"},
    {"cpu-throttle-increment", MIG_PARAM_U64, P(cpu_throttle_increment),
     POLICY_DEFAULT_THROTTLE_INCREMENT, 1, 99, NULL,
     "with auto-converge: % added at each pass end that is still over the limit without "
     "progress"},
    {"max-cpu-throttle", MIG_PARAM_U64, P(max_cpu_throttle), POLICY_DEFAULT_THROTTLE_MAX, 1, 99,
     NULL,
     "with auto-converge: the highest throttle, %; a cpu-throttle-initial above it starts "
     "there"},
    {"cpu-throttle-tailslow", MIG_PARAM_BOOL, P(cpu_throttle_tailslow), 0, 0, 1, NULL,
     "with auto-converge: raise by less than cpu-throttle-increment when a smaller step "
     "should bring the dirty rate to half the bandwidth"},
    {"tls-creds", MIG_PARAM_STR, P(tls_creds), 0, 0, MIG_PARAM_STR_MAX - 1, NULL,
     "directory of x509 files (ca-cert.pem, server-*.pem, client-*.pem): TLS with mutual "
     "authentication on every migration connection; empty: plaintext"},
    {"tls-hostname", MIG_PARAM_STR, P(tls_hostname), 0, 0, MIG_PARAM_STR_MAX - 1, NULL,
     "source: the name the destination's certificate must carry; empty: the URI's host"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

void mig_params_init(struct mig_params *p)
{
	memset(p, 0, sizeof(*p)); /* strings: "" */
	for (const struct mig_param_desc *d = mig_param_table; d->name; d++)
		if (d->type != MIG_PARAM_STR)
			*(uint64_t *)((char *)p + d->offset) = d->dflt;
}

const struct mig_param_desc *mig_param_find(const char *name)
{
	for (const struct mig_param_desc *d = mig_param_table; d->name; d++)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

uint64_t mig_param_get(const struct mig_params *p, const struct mig_param_desc *d)
{
	if (d->type == MIG_PARAM_STR)
		return 0;
	return *(const uint64_t *)((const char *)p + d->offset);
}

int mig_param_set(struct mig_params *p, const struct mig_param_desc *d, uint64_t value,
		  struct ferr *err)
{
	if (d->type == MIG_PARAM_STR)
		return ferr_set(err, -EINVAL, "parameter '%s' is a string", d->name);
	if (value < d->min || value > d->max)
		return ferr_set(err, -ERANGE, "parameter '%s' must be between %llu and %llu",
				d->name, (unsigned long long)d->min, (unsigned long long)d->max);
	*(uint64_t *)((char *)p + d->offset) = value;
	return 0;
}

const char *mig_param_get_str(const struct mig_params *p, const struct mig_param_desc *d)
{
	return d->type == MIG_PARAM_STR ? (const char *)p + d->offset : "";
}

int mig_param_set_str(struct mig_params *p, const struct mig_param_desc *d, const char *value,
		      struct ferr *err)
{
	size_t len = strlen(value);

	if (d->type != MIG_PARAM_STR)
		return ferr_set(err, -EINVAL, "parameter '%s' is not a string", d->name);
	if (len < d->min || len > d->max || len >= MIG_PARAM_STR_MAX)
		return ferr_set(err, -ERANGE, "parameter '%s' must be %llu to %llu bytes long",
				d->name, (unsigned long long)d->min, (unsigned long long)d->max);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return ferr_set(err, -EINVAL, "parameter '%s' contains a control character",
					d->name);
	memcpy((char *)p + d->offset, value, len + 1);
	return 0;
}

int mig_param_enum_value(const struct mig_param_desc *d, const char *name, uint64_t *value,
			 struct ferr *err)
{
	char list[128] = "";

	for (uint64_t i = 0; d->names[i]; i++) {
		if (strcmp(d->names[i], name) == 0) {
			*value = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 d->names[i]);
	}
	return ferr_set(err, -EINVAL, "parameter '%s' takes one of: %s (got '%s')", d->name, list,
			name);
}

int mig_params_check(const struct mig_params *p, struct ferr *err)
{
	struct policy_params pp;

	mig_params_policy(p, &pp);
	return policy_params_check(&pp, err);
}

void mig_params_policy(const struct mig_params *mp, struct policy_params *pp)
{
	*pp = (struct policy_params){
	    .downtime_limit_ns = mp->downtime_limit_ms * 1000000ull,
	    .max_bandwidth = mp->max_bandwidth,
	    .timeout_ns = mp->timeout_s * 1000000000ull,
	    .on_timeout = (enum policy_on_timeout)mp->on_timeout,
	    .postcopy = mp->postcopy_ram != 0,
	    .postcopy_after_passes = (uint32_t)mp->postcopy_after_passes,
	    .margin_pct = (uint32_t)mp->margin_pct,
	    .gain_pct = (uint32_t)mp->gain_pct,
	    .stall_passes = (uint32_t)mp->stall_passes,
	    .stall_pct = (uint32_t)mp->stall_pct,
	    .max_passes = (uint32_t)mp->max_passes,
	    .max_attempts = (uint32_t)mp->max_attempts,
	    .auto_converge = mp->auto_converge != 0,
	    .throttle_initial = (uint32_t)mp->cpu_throttle_initial,
	    .throttle_increment = (uint32_t)mp->cpu_throttle_increment,
	    .throttle_max = (uint32_t)mp->max_cpu_throttle,
	    .throttle_tailslow = mp->cpu_throttle_tailslow != 0,
	};
}
