# shellcheck shell=bash
# Sourced by the shell stand-ins. json_str <string> sets $str to the string as a JSON string literal,
# json_args <args...> sets $json to the arguments as one JSON array: the line
# JSON.stringify(process.argv.slice(2)) writes (escaped as JSON requires for what CLI arguments hold).
json_str() {
  local a=$1
  a=${a//\\/\\\\}
  a=${a//\"/\\\"}
  a=${a//$'\n'/\\n}
  a=${a//$'\r'/\\r}
  a=${a//$'\t'/\\t}
  str="\"$a\""
}
json_args() {
  local a sep=""
  json="["
  for a in "$@"; do
    json_str "$a"
    json+="$sep$str"
    sep=","
  done
  json+="]"
}
