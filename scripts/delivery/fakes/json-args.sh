# shellcheck shell=bash
# Sourced by the shell stand-ins. json_str <string> sets $str to the string as a JSON string literal,
# json_args <args...> sets $json to the arguments as one JSON array: the line
# JSON.stringify(process.argv.slice(2)) writes, but with every control character escaped (DEL too, which
# JSON.stringify leaves raw): the same values once parsed.
json_str() {
  local a=$1 c i out=""
  a=${a//\\/\\\\}
  a=${a//\"/\\\"}
  a=${a//$'\n'/\\n}
  a=${a//$'\r'/\\r}
  a=${a//$'\t'/\\t}
  # Any other control character (an escape sequence in a commit message, say) as \u00XX: JSON allows none raw.
  if [[ $a == *[[:cntrl:]]* ]]; then
    for ((i = 0; i < ${#a}; i++)); do
      c=${a:i:1}
      [[ $c == [[:cntrl:]] ]] && printf -v c '\\u%04x' "'$c"
      out+=$c
    done
    a=$out
  fi
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
