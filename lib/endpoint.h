/* kn_endpoint: which URL a client talks to. */
#ifndef KN_ENDPOINT_H
#define KN_ENDPOINT_H

#include "creds.h"

/* Explicit → AWS_ENDPOINT_URL_KINESIS → AWS_ENDPOINT_URL → https://kinesis.REGION.amazonaws.com (".amazonaws.com.cn"
 * for cn-* regions). env NULL means kn_env_process(); region may be NULL when a URL is given. Writes the normalised URL
 * (lower-case scheme, default port dropped, path kept) into out[cap]. KN_ERR_CONFIG for a malformed URL (scheme not
 * http/https, bad host or port, user info, query, fragment, spaces) or region name; KN_ERR_NO_REGION when neither a
 * URL nor a region is given. */
kn_status kn_endpoint_resolve(const kn_env *env, const char *explicit_url, const char *region, char *out, size_t cap,
                              kn_error *err);

/* The host[:port] part of a URL as written (what the Host header carries for a URL kn_endpoint_resolve made), as a
 * view into url; what follows it in url is the path. 0 when malformed. */
size_t kn_endpoint_host(const char *url, const char **host);

#endif
