#   The wire codec: the only place that speaks MessagePack on the wire.
CHORUS_CORE_SOURCES = \
    %D%/chorus_msg.c %D%/chorus_msg.h %D%/chorus_mpscan.c %D%/chorus_mpscan.h %D%/chorus_msg_bytes.c %D%/chorus_msg_bytes.h
EXTRA_DIST += %D%/chorus-protocol.md %D%/MESSAGES.txt
