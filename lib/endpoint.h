/* kn_endpoint: which URL a client talks to. */
#ifndef KN_ENDPOINT_H
#define KN_ENDPOINT_H

#include "creds.h"

/* Explicit → AWS_ENDPOINT_URL_KINESIS → AWS_ENDPOINT_URL → https://kinesis.REGION.amazonaws.com (".amazonaws.com.cn"
 * for cn-* regions). Validates the scheme (http or https) and host. Writes into out[cap]. */
kn_status kn_endpoint_resolve(const kn_env *env, const char *explicit_url, const char *region, char *out, size_t cap,
                              kn_error *err);

/* The host[:port] part of a URL (what the Host header carries), as a view into url. 0 when malformed. */
size_t kn_endpoint_host(const char *url, const char **host);

#endif
