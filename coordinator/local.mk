#   chorus-coordinator: the flow orchestrator daemon. Its classes live in a
#   convenience library so that the tests can run a coordinator in-process.
bin_PROGRAMS += coordinator/chorus-coordinator
coordinator_chorus_coordinator_SOURCES = coordinator/chorus_coordinator_main.c
#   The coordinator uses libchorus's public API and its own classes only
CHORUS_COORDINATOR_CPPFLAGS = $(CHORUS_PUBLIC_CPPFLAGS) -I$(top_srcdir)/coordinator \
    $(YAML_CFLAGS) $(JANSSON_CFLAGS)
coordinator_chorus_coordinator_CPPFLAGS = $(CHORUS_COORDINATOR_CPPFLAGS)
coordinator_chorus_coordinator_LDADD = libchorus_coordinator.la libchorus.la \
    $(CZMQ_LIBS) $(ZMQ_LIBS) $(YAML_LIBS) $(JANSSON_LIBS) $(MSGPACK_LIBS) $(LEVELDB_LIBS)

#   Flow definitions (YAML)
noinst_LTLIBRARIES += libchorus_coordinator.la
libchorus_coordinator_la_SOURCES = coordinator/chorus_flowdef.c coordinator/chorus_flowdef_path.c coordinator/chorus_flowdef.h
libchorus_coordinator_la_LIBADD = $(YAML_LIBS) $(JANSSON_LIBS)
libchorus_coordinator_la_CPPFLAGS = $(CHORUS_COORDINATOR_CPPFLAGS)
EXTRA_DIST += coordinator/FLOWS.md

#   Flow engine
libchorus_coordinator_la_SOURCES += coordinator/chorus_flow.c coordinator/chorus_flow.h \
    coordinator/chorus_flow_private.h coordinator/chorus_flow_record.c coordinator/chorus_flow_sub.c \
    coordinator/chorus_flow_task.c coordinator/chorus_flow_task.h coordinator/chorus_task_state.h \
    coordinator/chorus_flowset.c coordinator/chorus_value.c coordinator/chorus_value.h \
    coordinator/chorus_cond.c coordinator/chorus_cond.h coordinator/chorus_sleep.c \
    coordinator/chorus_sleep.h \
    coordinator/chorus_await.c

#   The journal, in a library of its own that `chorus store` links too
noinst_LTLIBRARIES += libchorus_journal.la
libchorus_journal_la_SOURCES = coordinator/chorus_journal.c coordinator/chorus_journal.h \
    coordinator/chorus_journal_private.h coordinator/chorus_journal_repair.c \
    coordinator/chorus_journal_writer.c \
    coordinator/chorus_record.c coordinator/chorus_record.h
libchorus_journal_la_LIBADD = $(LEVELDB_LIBS) $(JANSSON_LIBS) $(ZLIB_LIBS)
libchorus_journal_la_CPPFLAGS = $(CHORUS_COORDINATOR_CPPFLAGS) $(ZLIB_CFLAGS)

#   The daemon's classes: journal and coordinator shell
libchorus_coordinator_la_SOURCES += coordinator/chorus_coordinator.c coordinator/chorus_coordinator.h \
    coordinator/chorus_timers.c coordinator/chorus_timers.h coordinator/chorus_defset.c \
    coordinator/chorus_defset.h
libchorus_coordinator_la_LIBADD += libchorus_journal.la $(LEVELDB_LIBS)
