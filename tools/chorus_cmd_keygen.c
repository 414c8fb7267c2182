/*  chorus_cmd_keygen.c — `chorus keygen`: make a node's CURVE certificate
    for a secure mesh, with the metadata that says what its holder may do,
    and show what a certificate holds without ever printing a secret key.
*/
#include "chorus_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  What the metadata values may be: the library reads them back as these
#define S_NAME_MAX 64
#define S_SERVICE_MAX 64
#define S_PREFIX_MAX 256
#define S_CALL_MAX 193              //  SERVICE (64) "." COMMAND (128)
//  czmq reads a certificate line of at most 1024 bytes: a joined list
//  must fit one, with its name, indent and quotes
#define S_JOINED_MAX 1000
//  A certificate is a few hundred bytes; anything much larger is not one
#define S_FILE_MAX (1024 * 1024)
//  Z85 text of a 32-byte key
#define S_KEY_TEXT 40

enum {
    S_OPT_SERVICE = CHORUS_CLI_OPT_OWN,
    S_OPT_PUBLISH,
    S_OPT_CALL,
    S_OPT_DIR,
    S_OPT_FORCE,
    S_OPT_SHOW
};

static const struct option s_options [] = {
    { "service", required_argument, NULL, S_OPT_SERVICE },
    { "publish", required_argument, NULL, S_OPT_PUBLISH },
    { "call", required_argument, NULL, S_OPT_CALL },
    { "dir", required_argument, NULL, S_OPT_DIR },
    { "force", no_argument, NULL, S_OPT_FORCE },
    { "show", required_argument, NULL, S_OPT_SHOW },
    CHORUS_CLI_JSON_OPTION,
    { "help", no_argument, NULL, CHORUS_CLI_OPT_LONG_HELP },
    { NULL, 0, NULL, 0 }
};

//  One run of the subcommand
typedef struct {
    chorus_cli_t cli;               //  messages, --help, --json
    const char *name;               //  NAME
    const char *service;            //  --service, or NULL: any service
    zlist_t *publish;               //  --publish prefixes (borrowed from argv)
    zlist_t *call;                  //  --call entries (borrowed from argv)
    const char *dir;                //  --dir
    bool force;                     //  --force: replace existing files
    const char *show;               //  --show FILE, or NULL to make a key
    mode_t umask;                   //  the process's file mode mask, as we found it
} s_keygen_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus keygen NAME [--service SERVICE] [--publish PREFIX]...\n"
        "                          [--call SERVICE[.COMMAND]]... [--dir DIR] [--force]\n"
        "       chorus keygen --show FILE [--json]\n"
        "\n"
        "Make a CURVE key pair for a node of a secure mesh: DIR/NAME.cert, the\n"
        "public certificate to put in the trust directory of the nodes that are to\n"
        "accept it, and DIR/NAME.cert_secret, the secret one for the node's own\n"
        "--cert (mode 0600: keep it private). The certificate says what its holder\n"
        "may do; each option left out allows anything:\n"
        "\n"
        "  --service SERVICE       the only service the holder may run as ('*': any)\n"
        "  --publish PREFIX        it may publish only topics starting with PREFIX;\n"
        "                          repeatable\n"
        "  --call SERVICE[.COMMAND]  it may send only these commands (a SERVICE alone:\n"
        "                          all of its commands); repeatable\n"
        "  --dir DIR               where to write the files, created if needed\n"
        "                          (default: the current directory)\n"
        "  --force                 replace existing files of that NAME\n"
        "  --show FILE             print the public key and metadata of a certificate\n"
        "                          (public or secret; a secret key is never printed)\n"
        "  --json                  print one JSON object: {\"key\", \"secret\", \"metadata\"}\n"
        "                          for --show; {\"key\", \"public_file\", \"secret_file\"}\n"
        "                          for a new key\n"
        "  -h, --help              show this help and exit\n"
        "\n"
        "NAME is 1-64 characters of A-Z a-z 0-9 . _ - (a seed given as ENDPOINT@NAME\n"
        "is found by it in the trust directory). SERVICE, PREFIX and COMMAND are\n"
        "printable ASCII without spaces or '\"'.\n"
        "\n"
        "Exit status: 0 done, 1 failure (a file exists, cannot be written or read,\n"
        "or is not a certificate), 2 bad usage.\n");
}

//  --------------------------------------------------------------------------
//  Options

static bool
s_valid_name (const char *name)
{
    size_t length = strlen (name);
    return length >= 1 && length <= S_NAME_MAX
        && strspn (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
           == length;
}

//  1 to max printable ASCII characters, none a space; no '"' either, which
//  a certificate cannot hold (czmq writes values in quotes, unescaped)
static bool
s_valid_token (const char *text, size_t max)
{
    size_t length = strlen (text);
    if (length < 1 || length > max)
        return false;
    for (const char *c = text; *c; c++)
        if (*c < 0x21 || *c > 0x7e || *c == '"')
            return false;
    return true;
}

static int
s_option (s_keygen_t *self, int opt, char **argv)
{
    switch (opt) {
        case S_OPT_SERVICE:
            if (self->service)
                return chorus_cli_usage_error (&self->cli, "--service given twice: a "
                                               "certificate is for one service, or '*'");
            if (!s_valid_token (optarg, S_SERVICE_MAX))
                return chorus_cli_usage_error (&self->cli, "--service '%s' is not a service "
                                               "name (1-%d printable ASCII characters, no "
                                               "spaces or '\"') nor '*'", optarg,
                                               S_SERVICE_MAX);
            self->service = optarg;
            break;
        case S_OPT_PUBLISH:
            if (!s_valid_token (optarg, S_PREFIX_MAX))
                return chorus_cli_usage_error (&self->cli, "--publish '%s' is not a topic "
                                               "prefix (1-%d printable ASCII characters, no "
                                               "spaces or '\"')", optarg, S_PREFIX_MAX);
            zlist_append (self->publish, optarg);
            break;
        case S_OPT_CALL:
            if (!s_valid_token (optarg, S_CALL_MAX))
                return chorus_cli_usage_error (&self->cli, "--call '%s' is not SERVICE or "
                                               "SERVICE.COMMAND (1-%d printable ASCII "
                                               "characters, no spaces or '\"')", optarg,
                                               S_CALL_MAX);
            zlist_append (self->call, optarg);
            break;
        case S_OPT_DIR: self->dir = optarg; break;
        case S_OPT_FORCE: self->force = true; break;
        case S_OPT_SHOW: self->show = optarg; break;
        default:
            return chorus_cli_option (&self->cli, opt, argv);
    }
    return CHORUS_CLI_CONTINUE;
}

static int
s_parse (s_keygen_t *self, int argc, char **argv)
{
    int opt;
    while ((opt = getopt_long (argc, argv, CHORUS_CLI_SHORT_OPTIONS, s_options, NULL)) != -1) {
        int rc = s_option (self, opt, argv);
        if (rc != CHORUS_CLI_CONTINUE)
            return rc;
    }
    if (self->show) {
        if (optind < argc)
            return chorus_cli_usage_error (&self->cli, "unexpected argument '%s': --show "
                                           "takes one FILE", argv [optind]);
        if (self->service || zlist_size (self->publish) || zlist_size (self->call)
            || self->dir || self->force)
            return chorus_cli_usage_error (&self->cli, "--show only reads a certificate: "
                                           "it takes no options that make one");
        return CHORUS_CLI_CONTINUE;
    }
    if (optind >= argc)
        return chorus_cli_usage_error (&self->cli, "missing NAME");
    self->name = argv [optind++];
    if (optind < argc)
        return chorus_cli_usage_error (&self->cli, "unexpected argument '%s'", argv [optind]);
    if (!s_valid_name (self->name))
        return chorus_cli_usage_error (&self->cli, "'%s' is not a certificate name (1-%d "
                                       "characters of A-Z a-z 0-9 . _ -)", self->name,
                                       S_NAME_MAX);
    return CHORUS_CLI_CONTINUE;
}

//  --------------------------------------------------------------------------
//  Making a key

//  The entries joined by single spaces into *joined (freshly allocated);
//  -1 after a message when they are too long for a certificate line
static int
s_join (s_keygen_t *self, zlist_t *entries, const char *option, char **joined)
{
    size_t length = 0;
    for (char *entry = zlist_first (entries); entry; entry = zlist_next (entries))
        length += strlen (entry) + 1;
    if (length > S_JOINED_MAX + 1) {
        chorus_cli_usage_error (&self->cli, "%s: the entries add up to %zu characters; a "
                                "certificate holds at most %d", option, length - 1,
                                S_JOINED_MAX);
        return -1;
    }
    *joined = (char *) zmalloc (length + 1);
    for (char *entry = zlist_first (entries); entry; entry = zlist_next (entries)) {
        if (**joined)
            strcat (*joined, " ");
        strcat (*joined, entry);
    }
    return 0;
}

//  Whether a file exists at path, a dangling link included
static bool
s_exists (const char *path)
{
    struct stat info;
    return lstat (path, &info) == 0;
}

//  Loads a certificate file with czmq, which reports syntax errors on
//  stdout (where our data goes): those are kept from it, and we say what
//  is wrong ourselves
static zconfig_t *
s_load_quietly (const char *path)
{
    fflush (stdout);
    int saved = dup (STDOUT_FILENO);
    int null = open ("/dev/null", O_WRONLY);
    if (saved >= 0 && null >= 0)
        dup2 (null, STDOUT_FILENO);
    zconfig_t *root = zconfig_load (path);
    fflush (stdout);
    if (saved >= 0 && null >= 0)
        dup2 (saved, STDOUT_FILENO);
    if (null >= 0)
        close (null);
    if (saved >= 0)
        close (saved);
    return root;
}

//  Writes one certificate file at a temporary name beside path, created
//  0600 from the start (mkstemp) so that a secret key is never readable
//  by others, even while it is written and whatever file path names now.
//  The public file then gets the usual mode. Returns the temporary name,
//  or NULL after a message.
static char *
s_write_temporary (s_keygen_t *self, zcert_t *cert, const char *path, const char *file_name,
                   bool secret)
{
    char *temporary = zsys_sprintf ("%s/.%s.XXXXXX", self->dir, file_name);
    int fd = temporary? mkstemp (temporary): -1;
    if (fd == -1) {
        chorus_cli_error (&self->cli, "cannot write in '%s': %s", self->dir, strerror (errno));
        zstr_free (&temporary);
        return NULL;
    }
    const char *why = NULL;
    if (!secret && fchmod (fd, (S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH) & ~self->umask))
        why = strerror (errno);
    //  czmq opens the file again by name, truncating it and keeping its mode
    if (!why && (secret? zcert_save_secret (cert, temporary)
                       : zcert_save_public (cert, temporary)))
        why = strerror (errno);
    //  Saving a secret leaves czmq's idea of a default mask in force
    umask (self->umask);
    //  Read it back: a full disk shows here, not when a node cannot start
    if (!why) {
        zconfig_t *root = s_load_quietly (temporary);
        const char *key = root? zconfig_get (root, "/curve/public-key", NULL): NULL;
        if (!key || !streq (key, zcert_public_txt (cert)))
            why = "it does not read back whole (is the disk full?)";
        zconfig_destroy (&root);
    }
    if (!why && fsync (fd))
        why = strerror (errno);
    close (fd);
    if (why) {
        chorus_cli_error (&self->cli, "cannot write '%s': %s", path, why);
        unlink (temporary);
        zstr_free (&temporary);
    }
    return temporary;
}

//  Moves a written file to its name; without --force, never over an
//  existing file (link fails where one appeared since we looked)
static int
s_install (s_keygen_t *self, const char *temporary, const char *path)
{
    int rc = self->force? rename (temporary, path): link (temporary, path);
    if (rc && errno == EEXIST)
        chorus_cli_error (&self->cli, "'%s' exists: not replaced (--force replaces it)", path);
    else
    if (rc)
        chorus_cli_error (&self->cli, "cannot write '%s': %s", path, strerror (errno));
    if (!self->force)
        unlink (temporary);
    return rc;
}

static int
s_print_made (s_keygen_t *self, zcert_t *cert, const char *public_path,
              const char *secret_path)
{
    if (self->cli.json)
        return chorus_cli_print_json (json_pack ("{s:s, s:o, s:o}", "key",
                                                 zcert_public_txt (cert), "public_file",
                                                 chorus_cli_json_text (public_path),
                                                 "secret_file",
                                                 chorus_cli_json_text (secret_path)));
    int rc = printf ("key          %s\npublic_file  %s\nsecret_file  %s\n",
                     zcert_public_txt (cert), public_path, secret_path);
    return rc < 0 || fflush (stdout)? -1: 0;
}

static int
s_make (s_keygen_t *self, zcert_t *cert)
{
    char *public_path = zsys_sprintf ("%s/%s.cert", self->dir, self->name);
    char *secret_path = zsys_sprintf ("%s/%s.cert_secret", self->dir, self->name);
    char *public_temporary = NULL, *secret_temporary = NULL;
    int status = CHORUS_CLI_FAILED;
    const char *existing = s_exists (secret_path)? secret_path:
                           s_exists (public_path)? public_path: NULL;
    if (!self->force && existing)
        chorus_cli_error (&self->cli, "'%s' exists: not replaced (--force replaces it)",
                          existing);
    else
    if (chorus_cli_make_dirs (self->dir))
        chorus_cli_error (&self->cli, "cannot create directory '%s': %s", self->dir,
                          strerror (errno));
    else
    if ((secret_temporary = s_write_temporary (self, cert, secret_path, self->name, true))
        && (public_temporary = s_write_temporary (self, cert, public_path, self->name, false))
        && s_install (self, secret_temporary, secret_path) == 0) {
        if (s_install (self, public_temporary, public_path) == 0)
            status = s_print_made (self, cert, public_path, secret_path)? CHORUS_CLI_FAILED
                                                                         : CHORUS_CLI_OK;
        else
        if (!self->force)
            unlink (secret_path);   //  ours: no half a pair is left behind
    }
    if (status != CHORUS_CLI_OK) {
        if (secret_temporary)
            unlink (secret_temporary);
        if (public_temporary)
            unlink (public_temporary);
    }
    zstr_free (&public_temporary);
    zstr_free (&secret_temporary);
    zstr_free (&public_path);
    zstr_free (&secret_path);
    return status;
}

static int
s_generate (s_keygen_t *self)
{
    if (!zsys_has_curve ()) {
        chorus_cli_error (&self->cli, "this ZeroMQ library was built without CURVE");
        return CHORUS_CLI_FAILED;
    }
    char *publish = NULL, *call = NULL;
    if (s_join (self, self->publish, "--publish", &publish)
        || s_join (self, self->call, "--call", &call)) {
        free (publish);
        return CHORUS_CLI_USAGE;
    }
    self->umask = umask (0);
    umask (self->umask);
    zcert_t *cert = zcert_new ();
    if (!cert) {
        chorus_cli_error (&self->cli, "cannot make a key pair");
        free (publish);
        free (call);
        return CHORUS_CLI_FAILED;
    }
    //  These names are what the library reads (an absent entry allows all)
    zcert_set_meta (cert, "name", "%s", self->name);
    if (self->service)
        zcert_set_meta (cert, "service", "%s", self->service);
    if (*publish)
        zcert_set_meta (cert, "publish", "%s", publish);
    if (*call)
        zcert_set_meta (cert, "call", "%s", call);
    free (publish);
    free (call);
    int status = s_make (self, cert);
    zcert_destroy (&cert);
    return status;
}

//  --------------------------------------------------------------------------
//  Showing a certificate

//  40 characters that decode as Z85
static bool
s_valid_key (const char *text)
{
    byte key [32];
    return text && strlen (text) == S_KEY_TEXT && zmq_z85_decode (key, text) != NULL;
}

//  A value from a file as one line of text: what is not printable ASCII
//  shows as '?'
static void
s_print_text_line (const char *label, int width, const char *value)
{
    printf ("%-*s", width, label);
    for (const char *c = value; *c; c++)
        putchar (*c >= 0x20 && *c <= 0x7e? *c: '?');
    putchar ('\n');
}

static int
s_print_shown (s_keygen_t *self, const char *key, bool secret, zconfig_t *metadata)
{
    if (self->cli.json) {
        json_t *object = json_object ();
        for (zconfig_t *item = metadata? zconfig_child (metadata): NULL; item;
             item = zconfig_next (item))
            json_object_set_new (object, zconfig_name (item),
                                 chorus_cli_json_text (zconfig_value (item)));
        return chorus_cli_print_json (json_pack ("{s:s, s:b, s:o}", "key", key, "secret",
                                                 secret, "metadata", object));
    }
    int width = 8;
    for (zconfig_t *item = metadata? zconfig_child (metadata): NULL; item;
         item = zconfig_next (item))
        if ((int) strlen (zconfig_name (item)) + 2 > width)
            width = (int) strlen (zconfig_name (item)) + 2;
    s_print_text_line ("key", width, key);
    for (zconfig_t *item = metadata? zconfig_child (metadata): NULL; item;
         item = zconfig_next (item))
        s_print_text_line (zconfig_name (item), width, zconfig_value (item));
    s_print_text_line ("secret", width, secret? "yes": "no");
    return ferror (stdout) || fflush (stdout)? -1: 0;
}

static int
s_show (s_keygen_t *self)
{
    const char *path = self->show;
    struct stat info;
    if (stat (path, &info)) {
        chorus_cli_error (&self->cli, "cannot read '%s': %s", path, strerror (errno));
        return CHORUS_CLI_FAILED;
    }
    if (!S_ISREG (info.st_mode) || info.st_size > S_FILE_MAX) {
        chorus_cli_error (&self->cli, "'%s' is not a certificate: %s", path,
                          S_ISREG (info.st_mode)? "far too large": "not a file");
        return CHORUS_CLI_FAILED;
    }
    //  zconfig_load says nothing of why it fails: tell unreadable from bad
    if (access (path, R_OK)) {
        chorus_cli_error (&self->cli, "cannot read '%s': %s", path, strerror (errno));
        return CHORUS_CLI_FAILED;
    }
    zconfig_t *root = s_load_quietly (path);
    const char *key = root? zconfig_get (root, "/curve/public-key", NULL): NULL;
    if (!s_valid_key (key)) {
        chorus_cli_error (&self->cli, "'%s' is not a certificate: %s", path,
                          !root? "not in czmq's certificate format":
                          !key? "it has no curve/public-key":
                                "its curve/public-key is not a Z85 key");
        zconfig_destroy (&root);
        return CHORUS_CLI_FAILED;
    }
    //  czmq writes no secret-key in a public file; an all-zero one is how
    //  it stands for none
    const char *secret_key = zconfig_get (root, "/curve/secret-key", NULL);
    bool secret = s_valid_key (secret_key)
               && strspn (secret_key, "0") != strlen (secret_key);
    int rc = s_print_shown (self, key, secret, zconfig_locate (root, "/metadata"));
    zconfig_destroy (&root);
    return rc? CHORUS_CLI_FAILED: CHORUS_CLI_OK;
}

//  --------------------------------------------------------------------------

int
chorus_cmd_keygen (int argc, char **argv)
{
    s_keygen_t self = { .dir = NULL };
    chorus_cli_init (&self.cli, "keygen", s_usage);
    self.publish = zlist_new ();
    self.call = zlist_new ();
    int status = s_parse (&self, argc, argv);
    if (status == CHORUS_CLI_CONTINUE) {
        if (!self.dir)
            self.dir = ".";
        status = self.show? s_show (&self): s_generate (&self);
    }
    zlist_destroy (&self.publish);
    zlist_destroy (&self.call);
    chorus_cli_release (&self.cli);
    return status;
}
