#!/bin/sh
# Not executable: mod_websession declines it and Apache serves it as a file.
echo NOTEXEC-FILE-CONTENT
