_crgrpc_completion() {
    local IFS=$'\n' word prefix rest=$COMP_LINE
    local seps=${COMP_WORDBREAKS//[^:=]/}
    local -a words=()
    local -i i j=-1 cword=0
    # Join back the words bash split at `:` or `=` (host:port, https://host,
    # --flag=value): a word no blank precedes, that is made of those characters
    # or follows one of them, belongs to the word before it.
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        word=${COMP_WORDS[i]}
        if ((j > 0)) && [[ -n $seps && $rest != [[:blank:]]* ]] &&
            [[ ( -n $word && -z ${word//[$seps]/} ) || ${words[j]} == *[$seps] ]]; then
            words[j]+=$word
        else
            words[++j]=$word
        fi
        rest=${rest#*"$word"}
        ((i == COMP_CWORD)) && cword=j
    done
    mapfile -t COMPREPLY < <(env COMP_WORDS="${words[*]}" COMP_CWORD=$cword \
        _CRGRPC_COMPLETE=complete_bash "$1")
    # bash replaces only the text after the last `:` or `=` of the word.
    prefix=${words[cword]}
    if [[ -n $seps && $prefix == *[$seps]* ]]; then
        prefix=${prefix%"${prefix##*[$seps]}"}
        COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
    fi
    return 0
}

complete -o default -F _crgrpc_completion crgrpc
