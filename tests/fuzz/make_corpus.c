/*  make_corpus.c — writes one valid encoding of every message type, with all
    fields and with only the required ones, as the fuzzer's seed corpus.
    Usage: make_corpus DIR
*/
#include "../codec_fixtures.h"

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    for (int type = 1; type <= CHORUS_MSG_TYPES; type++) {
        for (int full = 0; full < 2; full++) {
            chorus_msg_t *msg = chorus_msg_new (type);
            if (full)
                fixture_fill_all (msg);
            else
                fixture_fill_required (msg);
            zframe_t *frame = chorus_msg_encode (msg);
            char path [1024];
            snprintf (path, sizeof (path), "%s/%s-%s", argv [1], chorus_msg_type_name (type),
                      full? "all": "required");
            FILE *file = fopen (path, "wb");
            if (!file || fwrite (zframe_data (frame), 1, zframe_size (frame), file)
                         != zframe_size (frame)) {
                fprintf (stderr, "make_corpus: cannot write %s\n", path);
                return 1;
            }
            fclose (file);
            zframe_destroy (&frame);
            chorus_msg_destroy (&msg);
        }
    }
    return 0;
}
