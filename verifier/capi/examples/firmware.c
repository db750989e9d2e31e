/*
 * firmware.c: the license loop of a PBX firmware on the tessera C API.
 *
 * One run is one boot of an appliance whose flash is a folder:
 *
 *   device.key    the device key (32 random bytes at provisioning; this
 *                 firmware holds it in "protected flash" and signs with
 *                 tessera_ed25519_sign; one with a secure element passes
 *                 the element's signing function instead)
 *   state.a/.b    the license state record, two copies (A/B)
 *   serial        the SW serial, learnt from the first license
 *   license.lic   the license in force
 *   incoming.lic  a license the partner brought from the vendor
 *   request.req   the request for the partner to carry to the vendor
 *
 *   boot -> load state -> accept incoming.lic if any -> verify license.lic
 *   -> on no license, renewal due, grace or expiry: write request.req
 *   -> persist state
 *
 * usage: firmware <flash folder> [<now, Unix seconds>]
 *
 * Built with the vendor's keyring header (tessera keyring export --format c
 * -o tessera_keyring.h): gcc -std=c99 -Wall -Wextra -Werror -I <folder of
 * tessera_keyring.h> -I verifier/capi/include firmware.c
 * libtessera_verifier_capi.a -lpthread -ldl -lm. examples/firmware.sh runs
 * it against the vendor CLI. Exit status: 0, 1 on an I/O error, 2 on a
 * refused license or request.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tessera.h"
#include "tessera_keyring.h"

/* The appliance: what its probes read (raw, as the hardware reports it). */
static const char HW_SERIAL[] = "HW-7F3A-0042";
static const char NIC_MAC[] = "00:16:3E:5A:1B:2C";
static const char SYSTEM_UUID[] = "{4C4C4544-0042-3510-8056-B4C04F4E3232}";
static const char DISK_SERIAL[] = "S3Z9NB0K123456";

static char path_buf[4096];
static struct tessera_decision decision; /* ~4.3 KiB: static, as firmware keeps it */
static char text[TESSERA_MAX_ARMOR_LEN];
static uint8_t license[TESSERA_MAX_LICENSE_LEN];
static const char *flash;

static const char *at(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", flash, name);
    return path_buf;
}

/* Reads a whole file into buf; returns its length, or -1 if it is absent. */
static long read_file(const char *name, void *buf, size_t cap)
{
    FILE *f = fopen(at(name), "rb");
    size_t n;
    if (f == NULL) return -1;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

static int write_file(const char *name, const void *buf, size_t len)
{
    FILE *f = fopen(at(name), "wb");
    int ok;
    if (f == NULL) return -1;
    ok = fwrite(buf, 1, len, f) == len;
    ok &= fflush(f) == 0;
    ok &= fclose(f) == 0;
    return ok ? 0 : -1;
}

/* The device's random source: /dev/urandom here, a TRNG on real hardware. */
static int random_bytes(uint8_t *out, size_t len)
{
    FILE *f = fopen("/dev/urandom", "rb");
    size_t n;
    if (f == NULL) return -1;
    n = fread(out, 1, len, f);
    fclose(f);
    return n == len ? 0 : -1;
}

/* The signing function of a device that holds its key: ctx is the seed. */
static int32_t sign_with_device_key(void *ctx, const uint8_t *message, size_t len, uint8_t *sig)
{
    return tessera_ed25519_sign((const uint8_t *)ctx, message, len, sig);
}

static int fail(const char *what, int32_t status)
{
    fprintf(stderr, "firmware: %s: %s (%s)\n", what, tessera_strerror(status),
            tessera_status_code(status));
    return 2;
}

/* Both copies, A then B: a crash between them leaves one intact, and
 * tessera_state_select picks the newer intact one at the next boot. */
static int persist(const uint8_t state[TESSERA_STATE_LEN])
{
    if (write_file("state.a", state, TESSERA_STATE_LEN) != 0 ||
        write_file("state.b", state, TESSERA_STATE_LEN) != 0) {
        fprintf(stderr, "firmware: cannot write the state record\n");
        return 1;
    }
    return 0;
}

/* Reads an armored license from flash and verifies it into `decision`;
 * returns -1 when there is no such file. */
static int32_t verify_file(const char *name, const struct tessera_identity *identity, int64_t now,
                           uint8_t state[TESSERA_STATE_LEN], long *n)
{
    size_t len = 0;
    int32_t s;
    *n = read_file(name, text, sizeof text);
    if (*n < 0) return -1;
    s = tessera_armor_decode(text, (size_t)*n, license, sizeof license, &len);
    if (s != TESSERA_OK) return s;
    return tessera_verify(license, len, TESSERA_KEYRING, TESSERA_KEYRING_COUNT, identity, now,
                          state, TESSERA_STATE_LEN, &decision);
}

static void print_decision(const char *what)
{
    uint64_t users = 0;
    printf("%s: %s sequence=%" PRIu32 " serial=%s", what, tessera_verdict_name(decision.verdict),
           decision.sequence, decision.serial);
    if (decision.verdict == TESSERA_VERDICT_RENEWAL_DUE)
        printf(" days_left=%" PRIu32, decision.days_left);
    if (tessera_total_users(&decision, &users) == TESSERA_OK) printf(" users=%" PRIu64, users);
    printf(" next_check=%" PRId64 "\n", decision.next_check);
}

int main(int argc, char **argv)
{
    static uint8_t seed[32];
    uint8_t state[TESSERA_STATE_LEN], a[TESSERA_STATE_LEN], b[TESSERA_STATE_LEN];
    char sw_serial[TESSERA_SERIAL_CAP] = {0};
    struct tessera_component components[3];
    struct tessera_identity identity;
    int64_t now;
    long n;
    int32_t s;
    int in_force = 0, rc;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: firmware <flash folder> [<now, Unix seconds>]\n");
        return 1;
    }
    flash = argv[1];
    now = argc == 3 ? (int64_t)strtoll(argv[2], NULL, 10) : (int64_t)time(NULL);

    /* Provisioning, once: a device key and a fresh state record. */
    if (read_file("device.key", seed, sizeof seed) != (long)sizeof seed) {
        if (random_bytes(seed, sizeof seed) != 0 || write_file("device.key", seed, sizeof seed) != 0) {
            fprintf(stderr, "firmware: cannot create the device key\n");
            return 1;
        }
        if ((s = tessera_state_new(state, sizeof state)) != TESSERA_OK) return fail("state", s);
        if ((rc = persist(state)) != 0) return rc;
        printf("provisioned: device key and a fresh state record\n");
    }

    /* Boot: the state record (the newer intact copy of A and B). */
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    read_file("state.a", a, sizeof a);
    read_file("state.b", b, sizeof b);
    if ((s = tessera_state_select(a, sizeof a, b, sizeof b, state, sizeof state)) != TESSERA_OK)
        return fail("state record", s);

    /* The identity: serials and raw values as the probes read them. */
    memset(&identity, 0, sizeof identity);
    n = read_file("serial", sw_serial, sizeof sw_serial - 1);
    if (n > 0) {
        identity.sw_serial = sw_serial;
        identity.sw_serial_len = (size_t)n;
    }
    identity.hw_serial = HW_SERIAL;
    identity.hw_serial_len = strlen(HW_SERIAL);
    components[0].kind = TESSERA_KIND_NIC_MAC;
    components[0].value = (const uint8_t *)NIC_MAC;
    components[0].value_len = strlen(NIC_MAC);
    components[1].kind = TESSERA_KIND_SYSTEM_UUID;
    components[1].value = (const uint8_t *)SYSTEM_UUID;
    components[1].value_len = strlen(SYSTEM_UUID);
    components[2].kind = TESSERA_KIND_DISK_SERIAL;
    components[2].value = (const uint8_t *)DISK_SERIAL;
    components[2].value_len = strlen(DISK_SERIAL);
    identity.components = components;
    identity.components_len = 3;

    /* A license the partner brought: accepted if it verifies here. */
    s = verify_file("incoming.lic", &identity, now, state, &n);
    if (n >= 0) {
        if (s != TESSERA_OK) return fail("incoming.lic refused", s);
        if (write_file("license.lic", text, (size_t)n) != 0 || remove(at("incoming.lic")) != 0)
            return 1;
        /* The first license names the SW serial this appliance is now. */
        if (write_file("serial", decision.serial, strlen(decision.serial)) != 0) return 1;
        if (decision.state_changed && (rc = persist(state)) != 0) return rc;
        print_decision("accepted incoming.lic");
        strcpy(sw_serial, decision.serial);
        identity.sw_serial = sw_serial;
        identity.sw_serial_len = strlen(sw_serial);
    }

    /* The license in force, checked at every boot. */
    s = verify_file("license.lic", &identity, now, state, &n);
    if (n >= 0) {
        if (s != TESSERA_OK) return fail("license.lic refused", s);
        if (decision.state_changed && (rc = persist(state)) != 0) return rc;
        print_decision("license");
        in_force = 1;
    } else {
        printf("license: none\n");
    }

    /* No license, renewal due, grace or expired: ask the vendor. */
    if (!in_force || decision.verdict == TESSERA_VERDICT_RENEWAL_DUE ||
        decision.verdict == TESSERA_VERDICT_GRACE ||
        decision.verdict == TESSERA_VERDICT_EXPIRED_EMERGENCY_ONLY ||
        decision.verdict == TESSERA_VERDICT_EXPIRED_LOCKED) {
        static uint8_t request[TESSERA_MAX_REQUEST_LEN];
        static char armored[TESSERA_MAX_REQUEST_ARMOR_LEN];
        struct tessera_request_params params;
        size_t request_len = 0, armored_len = 0;

        memset(&params, 0, sizeof params);
        params.created_at = now;
        params.platform = 0; /* HW appliance */
        if (random_bytes(params.nonce, sizeof params.nonce) != 0 ||
            random_bytes(params.salt, sizeof params.salt) != 0)
            return 1;
        if ((s = tessera_ed25519_public_key(seed, params.device_key)) != TESSERA_OK)
            return fail("device key", s);
        s = tessera_request_encode(&identity, state, sizeof state, in_force ? &decision : NULL,
                                   &params, sign_with_device_key, seed, request,
                                   sizeof request, &request_len);
        if (s != TESSERA_OK) return fail("request", s);
        s = tessera_armor_encode(request, request_len, TESSERA_ARMOR_REQUEST, armored,
                                 sizeof armored, &armored_len);
        if (s != TESSERA_OK) return fail("request armor", s);
        if (write_file("request.req", armored, armored_len) != 0) return 1;
        printf("wrote request.req (%s, %zu bytes)\n", in_force ? "renewal" : "activation",
               request_len);
    }
    return 0;
}
