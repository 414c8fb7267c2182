#   The `chorus` command-line tool.
bin_PROGRAMS += tools/chorus
tools_chorus_SOURCES = tools/chorus.c
tools_chorus_LDADD = libchorus.la $(CZMQ_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS)
