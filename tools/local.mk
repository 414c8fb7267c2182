#   The `chorus` command-line tool: main and the shared option and node
#   helpers, then one file per subcommand family.
bin_PROGRAMS += tools/chorus
tools_chorus_SOURCES = tools/chorus.c tools/chorus_cli.h tools/chorus_cli.c \
    tools/chorus_cli_shell.c tools/chorus_cli_pool.c tools/chorus_cli_line.c \
    tools/chorus_cmd_publish.c tools/chorus_cmd_send.c \
    tools/chorus_cmd_serve.c tools/chorus_cmd_tail.c tools/chorus_cmd_flow.c \
    tools/chorus_cmd_store.c tools/chorus_cmd_keygen.c tools/chorus_cmd_top.c
#   The tool uses libchorus's public API, its own files, and (for `chorus
#   store`) the coordinator's journal class
CHORUS_TOOLS_CPPFLAGS = $(CHORUS_PUBLIC_CPPFLAGS) -I$(top_srcdir)/coordinator \
    -I$(top_srcdir)/tools $(JANSSON_CFLAGS)
tools_chorus_CPPFLAGS = $(CHORUS_TOOLS_CPPFLAGS)
#   `chorus store` reads a coordinator's journal too
tools_chorus_LDADD = libchorus_coordinator.la libchorus_tools.la libchorus.la $(CZMQ_LIBS) \
    $(ZMQ_LIBS) $(YAML_LIBS) $(JANSSON_LIBS) $(MSGPACK_LIBS) $(LEVELDB_LIBS)

#   How the tool reads and prints payloads, over libchorus's payload API
noinst_LTLIBRARIES += libchorus_tools.la
libchorus_tools_la_SOURCES = tools/chorus_json.c tools/chorus_json.h
libchorus_tools_la_CPPFLAGS = $(CHORUS_TOOLS_CPPFLAGS)
