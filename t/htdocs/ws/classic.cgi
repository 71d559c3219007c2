#!/bin/sh
# classic CGI: must keep working in a WebSession On directory
printf 'Content-Type: text/plain\r\n\r\n'
echo "classic cgi ok"
