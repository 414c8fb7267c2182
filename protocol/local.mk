#   The wire codec: the only place that speaks MessagePack on the wire.
CHORUS_CORE_SOURCES = \
    %D%/chorus_msg.c %D%/chorus_msg.h
EXTRA_DIST += %D%/chorus-protocol.md %D%/MESSAGES.txt
