"""The shell completion scripts crgrpc installs (--install-completion), shows
(--show-completion) and commits (completions/, by tools/gen_completions.py).

They replace typer's own (cli/clickcompat.use_completion_scripts), which fail
in two ways people meet:

- bash splits words at the characters of COMP_WORDBREAKS, `:` and `=` among
  them: `crgrpc call localhost:50051 <Tab>` reached crgrpc as `localhost`,
  `:`, `50051`, and nothing completed after any host:port, https://, http://
  or unix:// target. The bash function joins the words that bash split there
  back as they were typed (what bash-completion's `_get_comp_words_by_ref -n
  :=` does, inline so that it does not need the bash-completion package) and
  answers for the text bash replaces: the part after the last `:` or `=` of
  the word (bash-completion's `__ltrim_colon_completions`). Answers are read
  with mapfile: no globbing of what the server named.
- zsh autoloads the file from $fpath (where --install-completion puts it) as
  the body of `_crgrpc`, run on every Tab; the body only defined a function
  and registered it, so the first Tab of every shell completed nothing. It
  now completes whenever it runs as that body, and registers only when
  sourced (a test for `loadautofunc` alone misses the second Tab: from then on
  the body runs as `shfunc`). The answer is evaluated quoted.

The fish script is typer's: `commandline -cp` keeps colons.

Templates are %-formatted by typer with complete_func, autocomplete_var and
prog_name: a literal % is written %%.
"""

from __future__ import annotations

BASH = r"""
%(complete_func)s() {
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
        %(autocomplete_var)s=complete_bash "$1")
    # bash replaces only the text after the last `:` or `=` of the word.
    prefix=${words[cword]}
    if [[ -n $seps && $prefix == *[$seps]* ]]; then
        prefix=${prefix%%"${prefix##*[$seps]}"}
        COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
    fi
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s
"""

ZSH = r"""
#compdef %(prog_name)s

%(complete_func)s() {
  eval "$(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" %(autocomplete_var)s=complete_zsh %(prog_name)s)"
}

if [[ ${zsh_eval_context[-1]} == (loadautofunc|shfunc) ]]; then
  # autoloaded from $fpath: this file is the body of _%(prog_name)s, run on every Tab
  %(complete_func)s "$@"
else
  # sourced or eval'ed: register for the next Tab
  compdef %(complete_func)s %(prog_name)s
fi
"""

FISH = (
    'complete --command %(prog_name)s --no-files --arguments "(env %(autocomplete_var)s=complete_fish'
    " _TYPER_COMPLETE_FISH_ACTION=get-args _TYPER_COMPLETE_ARGS=(commandline -cp) %(prog_name)s)\""
    ' --condition "env %(autocomplete_var)s=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args'
    ' _TYPER_COMPLETE_ARGS=(commandline -cp) %(prog_name)s"'
)

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}
