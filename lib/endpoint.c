/* Endpoint URLs are accepted in the form scheme://host[:port][/path]: scheme http or https (any case), host a DNS
 * name, IPv4 address or bracketed IPv6 address, port 1-65535, an optional path the client posts to. User info, query
 * and fragment are refused: nothing in a Kinesis endpoint needs them, and user info could carry a password into
 * messages and traces. The resolved URL has its scheme in lower case and a default port (:80 for http, :443 for
 * https) dropped, since botocore signs the Host header without it. */
#include "endpoint.h"

#include "error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct url_parts {
    bool https;
    const char *host; /* host[:port] */
    size_t host_len;
    size_t name_len;  /* host without ":port" */
    unsigned port;    /* 0 when absent */
    const char *path; /* rest of the URL: "" or "/..." */
} url_parts;

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

static bool is_ipv6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* Splits "host[:port]" at the port; false when either part is malformed. */
static bool parse_authority(const char *a, size_t n, url_parts *u)
{
    size_t i = 0;
    if (n && a[0] == '[') {
        for (i = 1; i < n && a[i] != ']'; i++)
            if (!is_ipv6_char(a[i]))
                return false;
        if (i >= n || i == 1)
            return false;
        i++;
    } else {
        while (i < n && is_host_char(a[i]))
            i++;
        if (i == 0)
            return false;
    }
    u->name_len = i;
    u->port = 0;
    if (i == n)
        return true;
    if (a[i] != ':' || i + 1 == n || n - i - 1 > 5)
        return false;
    unsigned port = 0;
    for (size_t k = i + 1; k < n; k++) {
        if (a[k] < '0' || a[k] > '9')
            return false;
        port = port * 10 + (unsigned)(a[k] - '0');
    }
    if (port == 0 || port > 65535)
        return false;
    u->port = port;
    return true;
}

/* NULL when url is well-formed (filling u), else why not. */
static const char *parse_url(const char *url, url_parts *u)
{
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->https = true;
        rest = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        u->https = false;
        rest = url + 7;
    } else {
        return "the scheme must be http:// or https://";
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return "it contains a space or control character";
    size_t alen = strcspn(rest, "/?#");
    if (memchr(rest, '@', alen))
        return "user information (user@host) is not supported";
    if (!parse_authority(rest, alen, u))
        return "the host or port is malformed";
    u->host = rest;
    u->host_len = alen;
    u->path = rest + alen;
    if (strpbrk(u->path, "?#"))
        return "a query or fragment is not supported";
    return NULL;
}

static kn_status write_url(const url_parts *u, char *out, size_t cap, kn_error *err)
{
    bool default_port = u->port == (u->https ? 443u : 80u);
    int n = snprintf(out, cap, "%s://%.*s%s", u->https ? "https" : "http",
                     (int)(default_port ? u->name_len : u->host_len), u->host, u->path);
    if (n < 0 || (size_t)n >= cap)
        return kn_error_set(err, KN_ERR_CONFIG, "endpoint URL longer than %zu characters", cap ? cap - 1 : 0);
    return KN_OK;
}

static kn_status from_url(const char *url, const char *source, char *out, size_t cap, kn_error *err)
{
    url_parts u = {0};
    const char *why = parse_url(url, &u);
    if (why) {
        /* The URL is left out when it may hold a password. */
        if (strchr(url, '@'))
            return kn_error_set(err, KN_ERR_CONFIG, "invalid endpoint URL from %s: %s", source, why);
        return kn_error_set(err, KN_ERR_CONFIG, "invalid endpoint URL '%.256s' from %s: %s", url, source, why);
    }
    return write_url(&u, out, cap, err);
}

kn_status kn_endpoint_resolve(const kn_env *env, const char *explicit_url, const char *region, char *out, size_t cap,
                              kn_error *err)
{
    static const char *const vars[] = {"AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"};
    if (!env)
        env = kn_env_process();
    if (cap)
        out[0] = '\0';
    if (explicit_url && *explicit_url)
        return from_url(explicit_url, "the endpoint URL option", out, cap, err);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = env->get(env->ctx, vars[i]);
        if (v && *v)
            return from_url(v, vars[i], out, cap, err);
    }
    if (!region || !*region)
        return kn_error_set(err, KN_ERR_NO_REGION, "You must specify a region or an endpoint URL");
    if (!kn_creds_region_valid(region))
        return kn_error_set(err, KN_ERR_CONFIG, "Provided region_name '%.64s' doesn't match a supported format.",
                            region);
    /* The China partition has its own DNS suffix. */
    const char *suffix = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    int n = snprintf(out, cap, "https://kinesis.%s.%s", region, suffix);
    if (n < 0 || (size_t)n >= cap)
        return kn_error_set(err, KN_ERR_CONFIG, "endpoint URL longer than %zu characters", cap ? cap - 1 : 0);
    return KN_OK;
}

size_t kn_endpoint_host(const char *url, const char **host)
{
    url_parts u = {0};
    if (!url || parse_url(url, &u))
        return 0;
    *host = u.host;
    return u.host_len;
}
