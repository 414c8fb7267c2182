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
    coordinator/chorus_await.c coordinator/chorus_flow_figures.c

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
    coordinator/chorus_coordinator_stats.c coordinator/chorus_coordinator_stats.h \
    coordinator/chorus_timers.c coordinator/chorus_timers.h coordinator/chorus_defset.c \
    coordinator/chorus_flusher.c coordinator/chorus_flusher.h \
    coordinator/chorus_defset.h
libchorus_coordinator_la_LIBADD += libchorus_journal.la $(LEVELDB_LIBS)

#   The web console: its HTTP side, and its pages built into the binary
#   (coordinator/console/embed.sh makes a C file of them at build time)
CHORUS_CONSOLE_ASSETS = $(top_srcdir)/coordinator/console/index.html \
    $(top_srcdir)/coordinator/console/console.js $(top_srcdir)/coordinator/console/console.css
libchorus_coordinator_la_SOURCES += coordinator/chorus_console.c coordinator/chorus_console.h \
    coordinator/chorus_console_private.h coordinator/chorus_console_tail.c \
    coordinator/chorus_flow_query.c coordinator/chorus_flow_query.h
nodist_libchorus_coordinator_la_SOURCES = coordinator/chorus_console_assets.c
libchorus_coordinator_la_CPPFLAGS += $(MICROHTTPD_CFLAGS)
libchorus_coordinator_la_LIBADD += $(MICROHTTPD_LIBS)
coordinator_chorus_coordinator_LDADD += $(MICROHTTPD_LIBS)
BUILT_SOURCES += coordinator/chorus_console_assets.c
CLEANFILES += coordinator/chorus_console_assets.c
EXTRA_DIST += coordinator/console/index.html coordinator/console/console.js \
    coordinator/console/console.css coordinator/console/embed.sh coordinator/HTTP.md
coordinator/chorus_console_assets.c: $(CHORUS_CONSOLE_ASSETS) $(top_srcdir)/coordinator/console/embed.sh
	$(AM_V_GEN)mkdir -p coordinator && \
	    $(SHELL) $(top_srcdir)/coordinator/console/embed.sh $@ $(CHORUS_CONSOLE_ASSETS)
