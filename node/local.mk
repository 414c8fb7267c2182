#   libchorus: the node agent. The objects are built once into a
#   convenience library, which the tests link whole; the installed
#   library exports only what node/chorus.h declares.
CHORUS_CORE_SOURCES += \
    %D%/chorus.h %D%/chorus_private.h %D%/chorus_common.c \
    %D%/chorus_context.h %D%/chorus_context.c %D%/chorus_peer.h %D%/chorus_peer.c \
    %D%/chorus_timer_heap.h %D%/chorus_timer_heap.c %D%/chorus_poller.h %D%/chorus_poller.c \
    %D%/chorus_datagram.h %D%/chorus_datagram.c \
    %D%/chorus_fake.h %D%/chorus_fake.c \
    %D%/chorus_engine.c %D%/chorus_peers.h %D%/chorus_peers.c %D%/chorus_inbox.h %D%/chorus_inbox.c \
    %D%/chorus_delivery.h %D%/chorus_delivery.c %D%/chorus_commands.h \
    %D%/chorus_commands.c %D%/chorus_observer.h %D%/chorus_observer.c %D%/chorus_node.c %D%/chorus_views.c \
    %D%/chorus_gate.h %D%/chorus_gate.c %D%/chorus_keys.h %D%/chorus_keys.c \
    %D%/chorus_monitor.h %D%/chorus_monitor.c %D%/chorus_address.c
CHORUS_CORE_SOURCES += %D%/chorus_store.c %D%/chorus_store.h %D%/chorus_store_check.c
#   Payloads as JSON, for services, tools and the coordinator alike
CHORUS_CORE_SOURCES += %D%/chorus_payload.c %D%/chorus_fields.c
#   Figures for Prometheus, served at /metrics
CHORUS_CORE_SOURCES += %D%/chorus_metrics.h %D%/chorus_metrics.c %D%/chorus_stats.c

noinst_LTLIBRARIES += libchorus_core.la
libchorus_core_la_SOURCES = $(CHORUS_CORE_SOURCES)
libchorus_core_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -DCHORUS_BUILDING
#   The node agent and the codec under it; nothing above
libchorus_core_la_CPPFLAGS = $(CHORUS_PUBLIC_CPPFLAGS) -I$(top_srcdir)/protocol \
    $(MSGPACK_CFLAGS) $(JANSSON_CFLAGS) $(ZLIB_CFLAGS) $(MICROHTTPD_CFLAGS)
libchorus_core_la_LIBADD = $(CZMQ_LIBS) $(ZMQ_LIBS) $(MSGPACK_LIBS) $(LEVELDB_LIBS) $(JANSSON_LIBS) \
    $(ZLIB_LIBS) $(MICROHTTPD_LIBS) -lm

lib_LTLIBRARIES += libchorus.la
libchorus_la_SOURCES =
libchorus_la_LIBADD = libchorus_core.la
libchorus_la_LDFLAGS = -version-info $(CHORUS_LT_VERSION) -no-undefined
include_HEADERS += %D%/chorus.h
