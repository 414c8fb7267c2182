/*  test_await_examples_load.c — every example of FLOWS.md's section
    "Awaiting events and signals" loads, and awaits what the text says it
    awaits: the documentation cannot drift from the loader.
*/
#include "chorus_flowdef.h"
#include "tap.h"

#define S_SECTION "## Awaiting events and signals"

int
main (void)
{
    const char *srcdir = getenv ("srcdir");
    char path [1024];
    snprintf (path, sizeof (path), "%s/coordinator/FLOWS.md", srcdir? srcdir: ".");
    FILE *file = fopen (path, "r");
    if (!file)
        bail_out ("coordinator/FLOWS.md cannot be opened");
    static char text [512 * 1024];
    size_t size = fread (text, 1, sizeof (text) - 1, file);
    fclose (file);
    text [size] = 0;
    char *section = strstr (text, "\n" S_SECTION "\n");
    ok (section != NULL, "FLOWS.md has the section '%s'", S_SECTION);
    if (!section)
        bail_out ("no section");
    section++;
    char *end = strstr (section + 3, "\n## ");
    if (end)
        *end = 0;
    //  Each ```yaml block of the section, with the await it shows
    const char *awaits [] = { "payment.settled", "approved" };
    size_t examples = 0;
    for (char *at = strstr (section, "```yaml\n"); at; at = strstr (at, "```yaml\n")) {
        at += 8;
        char *close = strstr (at, "```\n");
        if (!close)
            break;
        *close = 0;
        char origin [64], error [512] = "";
        snprintf (origin, sizeof (origin), "FLOWS.md example %zu", examples + 1);
        chorus_flowdef_t *def = chorus_flowdef_parse (at, strlen (at), origin, error,
                                                      sizeof (error));
        ok (def != NULL, "%s loads%s%s", origin, def? "": ": ", def? "": error);
        const char *awaited = NULL;
        for (size_t index = 0; def && index < chorus_flowdef_steps (def); index++) {
            const chorus_stepdef_t *step = chorus_flowdef_step (def, index);
            if (chorus_stepdef_awaits (step))
                awaited = step->await_topic? step->await_topic: step->await_signal;
        }
        if (examples < 2)
            is_str (awaited, awaits [examples], "%s awaits %s", origin, awaits [examples]);
        chorus_flowdef_destroy (&def);
        examples++;
        at = close + 4;
    }
    is_int (examples, 2, "the section has its two examples");
    done_testing ();
}
