#   chorus-coordinator: the flow orchestrator daemon.
bin_PROGRAMS += coordinator/chorus-coordinator
coordinator_chorus_coordinator_SOURCES = coordinator/chorus_coordinator_main.c
coordinator_chorus_coordinator_LDADD = libchorus.la $(CZMQ_LIBS) $(ZMQ_LIBS) $(YAML_LIBS)
