#   The `chorus` command-line tool.
bin_PROGRAMS += tools/chorus
tools_chorus_SOURCES = tools/chorus.c
tools_chorus_LDADD = libchorus.la $(CZMQ_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS)

#   The JSON <-> MessagePack bridge the tool prints and reads payloads with.
noinst_LTLIBRARIES += libchorus_tools.la
libchorus_tools_la_SOURCES = tools/chorus_json.c tools/chorus_json.h
libchorus_tools_la_LIBADD = $(JANSSON_LIBS) $(MSGPACK_LIBS) $(CZMQ_LIBS)
