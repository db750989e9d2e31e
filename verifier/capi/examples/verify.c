/*
 * verify.c: the tessera C API driven by test vectors, as PBX firmware calls
 * it. C99, no allocation; built in CI with
 *
 *   gcc -std=c99 -Wall -Wextra -Werror -I verifier/capi/include \
 *       verifier/capi/examples/verify.c libtessera_verifier_capi.a -lpthread -ldl -lm
 *
 * It reads commands on stdin, one per line, tokens separated by spaces, all
 * binary values in hex (examples/vectors.py writes them from the JSON files
 * of spec/vectors):
 *
 *   key <kid> <public key> <valid_from> <valid_until | -> <retired 0|1>
 *   decode <name> <license>
 *   armor <name> <armored text>
 *   verify <name> <now> <state_in> <license> <hw serial | -> <sw serial | ->
 *          <n> [<kind> <raw value>]...
 *
 * and prints one line per vector: `<name> result=<status code> key=value...`
 * (see print_decision). Exit status: 0, or 2 on a malformed command.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"

#define LINE_MAX_LEN 65536
#define VALUE_MAX_LEN 512

static char line[LINE_MAX_LEN];
static struct tessera_key_entry keyring[TESSERA_MAX_KEYS];
static size_t keyring_len;
static struct tessera_decision decision;
static uint8_t license[TESSERA_MAX_LICENSE_LEN + 16];
static char armored[LINE_MAX_LEN / 2];
static uint8_t values[TESSERA_MAX_COMPONENTS][VALUE_MAX_LEN];
static char hw_serial[VALUE_MAX_LEN];
static char sw_serial[VALUE_MAX_LEN];

static int fail(const char *what)
{
    fprintf(stderr, "verify: malformed command (%s)\n", what);
    return 2;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex `text` into `out` (capacity `cap`); returns the length or -1. */
static long unhex(const char *text, uint8_t *out, size_t cap)
{
    size_t n = strlen(text), i;
    if (n % 2 != 0 || n / 2 > cap) return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return (long)(n / 2);
}

static void print_hex(const uint8_t *bytes, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) printf("%02x", bytes[i]);
}

static char *next_token(void)
{
    return strtok(NULL, " \r\n");
}

static int parse_i64(const char *text, int64_t *out)
{
    char *end;
    if (text == NULL) return 0;
    *out = (int64_t)strtoll(text, &end, 10);
    return *end == '\0';
}

/* What the firmware reads of a decision: verdict, timing and the
 * entitlements through the query functions. */
static void print_decision(const struct tessera_decision *d)
{
    uint64_t users = 0;
    uint32_t units = 0;
    int32_t role = -1;
    char server[TESSERA_SERIAL_CAP];
    size_t i;
    unsigned enabled = 0;

    printf(" verdict=%s", tessera_verdict_name(d->verdict));
    if (d->verdict == TESSERA_VERDICT_RENEWAL_DUE) printf(" days_left=%" PRIu32, d->days_left);
    if (d->verdict == TESSERA_VERDICT_GRACE) printf(" until=%" PRId64, d->grace_until);
    printf(" next_check=%" PRId64 " days_since_renewal=%" PRId64 " matched=%u",
           d->next_check, d->days_since_renewal, (unsigned)d->matched_components);
    if (!d->full_service) {
        /* Expired or not yet valid: the queries answer nothing. */
        if (tessera_total_users(d, &users) != TESSERA_E_NO_SERVICE) printf(" grants=LEAK");
        printf(" grants=none");
        return;
    }
    if (tessera_total_users(d, &users) != TESSERA_OK) printf(" users=ERR");
    for (i = 0;; i++) {
        struct tessera_feature f;
        int32_t s = tessera_feature_at(d, i, &f);
        if (s == TESSERA_E_NOT_FOUND) break;
        if (s != TESSERA_OK) { printf(" features=ERR"); break; }
        enabled += f.enabled;
    }
    if (tessera_storage_units(d, &units) != TESSERA_OK) printf(" storage=ERR");
    if (tessera_sharing(d, &role, server, sizeof server) != TESSERA_OK) printf(" role=ERR");
    printf(" users=%" PRIu64 " features_enabled=%u storage_gb=%" PRIu64, users, enabled,
           (uint64_t)units * 10u);
    if (role == TESSERA_ROLE_CLIENT) printf(" role=client_of:%s", server);
    else printf(" role=%s", role == TESSERA_ROLE_SERVER ? "server" : "standalone");
    printf(" services=");
    for (i = 0;; i++) {
        struct tessera_service s;
        int32_t st = tessera_service_at(d, i, &s);
        if (st == TESSERA_E_NOT_FOUND) break;
        if (st != TESSERA_OK) { printf("ERR"); break; }
        printf("%s%u:%" PRId64 ":%" PRId64, i ? "," : "", (unsigned)s.code, s.start, s.end);
    }
    if (i == 0) printf("-");
}

static int cmd_key(void)
{
    const char *kid = next_token(), *pk = next_token(), *from = next_token();
    const char *until = next_token(), *retired = next_token();
    struct tessera_key_entry *k;
    if (keyring_len >= TESSERA_MAX_KEYS) return fail("too many keys");
    k = &keyring[keyring_len];
    if (kid == NULL || unhex(kid, k->kid, sizeof k->kid) != (long)sizeof k->kid) return fail("kid");
    if (pk == NULL || unhex(pk, k->public_key, sizeof k->public_key) != (long)sizeof k->public_key)
        return fail("public key");
    if (!parse_i64(from, &k->valid_from)) return fail("valid_from");
    if (until != NULL && strcmp(until, "-") == 0) k->valid_until = INT64_MAX;
    else if (!parse_i64(until, &k->valid_until)) return fail("valid_until");
    if (retired == NULL) return fail("retired");
    k->retired = (uint8_t)(strcmp(retired, "1") == 0);
    keyring_len++;
    return 0;
}

static void print_license(int32_t status)
{
    printf(" result=%s", tessera_status_code(status));
    if (status == TESSERA_OK)
        printf(" serial=%s sequence=%" PRIu32 " issued_at=%" PRId64 " lease_end=%" PRId64,
               decision.serial, decision.sequence, decision.issued_at, decision.lease_end);
    printf("\n");
}

static int cmd_decode(void)
{
    const char *name = next_token(), *hex = next_token();
    long n;
    if (name == NULL || hex == NULL) return fail("decode");
    n = unhex(hex, license, sizeof license);
    if (n < 0) return fail("license hex");
    printf("%s", name);
    print_license(tessera_decode_license(license, (size_t)n, keyring, keyring_len, &decision));
    return 0;
}

static int cmd_armor(void)
{
    const char *name = next_token(), *hex = next_token();
    size_t len = 0;
    long n;
    int32_t status;
    if (name == NULL || hex == NULL) return fail("armor");
    n = unhex(hex, (uint8_t *)armored, sizeof armored);
    if (n < 0) return fail("armor hex");
    printf("%s", name);
    status = tessera_armor_decode(armored, (size_t)n, license, sizeof license, &len);
    if (status == TESSERA_OK)
        status = tessera_decode_license(license, len, keyring, keyring_len, &decision);
    print_license(status);
    return 0;
}

static int cmd_verify(void)
{
    const char *name = next_token(), *now_text = next_token(), *state_hex = next_token();
    const char *license_hex = next_token(), *hw = next_token(), *sw = next_token();
    const char *count_text = next_token();
    struct tessera_component components[TESSERA_MAX_COMPONENTS];
    struct tessera_identity identity;
    uint8_t state[TESSERA_STATE_LEN];
    int64_t now, count;
    long n, state_len;
    int32_t status;
    size_t i;

    if (name == NULL || !parse_i64(now_text, &now) || state_hex == NULL || license_hex == NULL ||
        hw == NULL || sw == NULL || !parse_i64(count_text, &count) || count < 0 ||
        count > TESSERA_MAX_COMPONENTS)
        return fail("verify");
    state_len = unhex(state_hex, state, sizeof state);
    n = unhex(license_hex, license, sizeof license);
    if (state_len < 0 || n < 0) return fail("state or license hex");

    memset(&identity, 0, sizeof identity);
    if (strcmp(hw, "-") != 0) {
        long len = unhex(hw, (uint8_t *)hw_serial, sizeof hw_serial);
        if (len < 0) return fail("hw serial");
        identity.hw_serial = hw_serial;
        identity.hw_serial_len = (size_t)len;
    }
    if (strcmp(sw, "-") != 0) {
        long len = unhex(sw, (uint8_t *)sw_serial, sizeof sw_serial);
        if (len < 0) return fail("sw serial");
        identity.sw_serial = sw_serial;
        identity.sw_serial_len = (size_t)len;
    }
    for (i = 0; i < (size_t)count; i++) {
        int64_t kind;
        const char *value = NULL;
        long len;
        if (!parse_i64(next_token(), &kind) || kind < 0 || kind > 255 ||
            (value = next_token()) == NULL)
            return fail("component");
        len = unhex(value, values[i], VALUE_MAX_LEN);
        if (len < 0) return fail("component hex");
        components[i].kind = (uint8_t)kind;
        components[i].value = values[i];
        components[i].value_len = (size_t)len;
    }
    identity.components = count > 0 ? components : NULL;
    identity.components_len = (size_t)count;

    status = tessera_verify(license, (size_t)n, keyring, keyring_len, &identity, now, state,
                            (size_t)state_len, &decision);
    printf("%s result=%s state_out=", name, tessera_status_code(status));
    print_hex(state, (size_t)state_len);
    printf(" state_changed=%u", (unsigned)decision.state_changed);
    if (status == TESSERA_OK) print_decision(&decision);
    if (status == TESSERA_E_WRONG_DEVICE)
        printf(" matched=%u needed=%u", (unsigned)decision.wrong_device_matched,
               (unsigned)decision.wrong_device_needed);
    if (status == TESSERA_E_SUPERSEDED) printf(" seq=%" PRIu32, decision.superseded_sequence);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: verify < commands (see the comment at the top of verify.c)\n"
                        "tessera C API %s\n", tessera_version());
        return 2;
    }
    while (fgets(line, sizeof line, stdin) != NULL) {
        const char *cmd;
        int rc = 0;
        if (strchr(line, '\n') == NULL && !feof(stdin)) return fail("line too long");
        cmd = strtok(line, " \r\n");
        if (cmd == NULL || cmd[0] == '#') continue;
        if (strcmp(cmd, "key") == 0) rc = cmd_key();
        else if (strcmp(cmd, "decode") == 0) rc = cmd_decode();
        else if (strcmp(cmd, "armor") == 0) rc = cmd_armor();
        else if (strcmp(cmd, "verify") == 0) rc = cmd_verify();
        else rc = fail(cmd);
        if (rc != 0) return rc;
        fflush(stdout);
    }
    return 0;
}
