/*  chorus_program.h — what the two programs, chorus and chorus-coordinator,
    do alike with the library: where its messages go, and SIGHUP. Private
    to the project; header-only, in common/ because neither program may
    include the other's folder. Stands on chorus.h and czmq, so only the
    programs include it, never protocol/ or node/.
*/
#ifndef CHORUS_PROGRAM_H_INCLUDED
#define CHORUS_PROGRAM_H_INCLUDED

#include "chorus.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>

//  The library's messages. An error is the reason a call failed, which the
//  program reports itself with what it was doing: shown here too, it would
//  be said twice. The rest goes where czmq logs. Give it to chorus_set_log.
static inline void
chorus_program_library_log (chorus_log_level_t level, const char *message, void *arg)
{
    (void) arg;
    if (level == CHORUS_LOG_WARNING)
        zsys_warning ("%s", message);
    else
    if (level == CHORUS_LOG_DEBUG)
        zsys_debug ("%s", message);
}

//  SIGHUP calls handler instead of ending the program; a read it
//  interrupts (publish --lines on stdin) goes on rather than fail
static inline void
chorus_program_catch_hangup (void (*handler) (int))
{
    struct sigaction action;
    memset (&action, 0, sizeof (action));
    action.sa_handler = handler;
    sigemptyset (&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction (SIGHUP, &action, NULL);
}

#endif
