/*  chorus_cond.c — `when:` conditions: a recursive-descent parser of the
    fixed grammar in FLOWS.md ("Conditions") into a tree, and its
    evaluation. The grammar is the whole language: there are no variables,
    functions or arithmetic to interpret.
*/
#include "chorus_cond.h"
#include "chorus_flowdef.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    S_OR, S_AND, S_NOT,         //  left, right (S_NOT: left only)
    S_COMPARE,                  //  left op right, both operands
    S_IN,                       //  left in right (a list literal or a path)
    S_EXISTS,                   //  left, a path
    S_VALUE                     //  an operand alone: true when it is the boolean true
} s_kind_t;

typedef enum { S_EQ, S_NE, S_LT, S_LE, S_GT, S_GE } s_op_t;

typedef struct _s_node_t s_node_t;
struct _s_node_t {
    s_kind_t kind;              //  what it is
    s_op_t op;                  //  S_COMPARE: the operator
    s_node_t *left;             //  first operand or condition
    s_node_t *right;            //  second, NULL: none
    json_t *literal;            //  an operand that is a literal (or a list), owned
    const char *path;           //  an operand that is a path, in self->paths
};

struct _chorus_cond_t {
    s_node_t *root;             //  the tree
    json_t *paths;              //  the paths it reads, a list of strings
    size_t *offsets;            //  where each is in the text
    size_t offsets_max;         //  allocated
};

//  One parse in progress
typedef struct {
    const char *text;           //  the condition
    const char *at;             //  the next character to read
    chorus_cond_t *cond;        //  what is being built
    int depth;                  //  nesting so far
    char *error;                //  where the problem goes
    size_t error_size;          //  its size
    size_t *offset;             //  and where it is
    bool failed;                //  a problem was reported
} s_parser_t;

//  --------------------------------------------------------------------------
//  Tree

static void
s_node_destroy (s_node_t *node)
{
    if (!node)
        return;
    s_node_destroy (node->left);
    s_node_destroy (node->right);
    json_decref (node->literal);
    free (node);
}

static s_node_t *
s_node_new (s_kind_t kind)
{
    s_node_t *node = calloc (1, sizeof *node);
    if (!node)
        abort ();
    node->kind = kind;
    return node;
}

void
chorus_cond_destroy (chorus_cond_t **self_p)
{
    assert (self_p);
    chorus_cond_t *self = *self_p;
    if (!self)
        return;
    s_node_destroy (self->root);
    json_decref (self->paths);
    free (self->offsets);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Lexing

static int
s_fail (s_parser_t *self, const char *where, const char *format, ...)
{
    if (self->failed)
        return -1;
    self->failed = true;
    *self->offset = (size_t) (where - self->text);
    if (self->error && self->error_size) {
        int prefix = snprintf (self->error, self->error_size, "bad when: ");
        va_list args;
        va_start (args, format);
        if (prefix >= 0 && (size_t) prefix < self->error_size)
            vsnprintf (self->error + prefix, self->error_size - (size_t) prefix, format, args);
        va_end (args);
    }
    return -1;
}

static bool
s_word_char (char c)
{
    return isalnum ((unsigned char) c) || c == '_' || c == '-' || c == '.' || c == '$';
}

static void
s_skip (s_parser_t *self)
{
    while (*self->at == ' ' || *self->at == '\t' || *self->at == '\n' || *self->at == '\r')
        self->at++;
}

//  The token at `at`, to show in a message: "at 'TOKEN'" or "at the end"
static const char *
s_token (const char *at, char *buffer, size_t size)
{
    if (!*at)
        return "at the end";
    size_t length = 0;
    if (s_word_char (*at))
        while (s_word_char (at [length]) && length < 32)
            length++;
    else
        while (at [length] && strchr ("=!<>", at [length]) && length < 3)
            length++;
    if (length == 0)
        length = 1;
    snprintf (buffer, size, "at '%.*s'", (int) length, at);
    return buffer;
}

//  Is the keyword next (a whole word)? Then it is read
static bool
s_keyword (s_parser_t *self, const char *word)
{
    s_skip (self);
    size_t length = strlen (word);
    if (strncmp (self->at, word, length) != 0 || s_word_char (self->at [length]))
        return false;
    self->at += length;
    return true;
}

//  Is the punctuation next? Then it is read
static bool
s_punct (s_parser_t *self, const char *mark)
{
    s_skip (self);
    size_t length = strlen (mark);
    if (strncmp (self->at, mark, length) != 0)
        return false;
    self->at += length;
    return true;
}

//  A path, its syntax checked; it joins the paths of the condition
static int
s_path (s_parser_t *self, s_node_t *node)
{
    const char *start = self->at;
    size_t length = 0;
    while (s_word_char (start [length]))
        length++;
    char *path = strndup (start, length);
    if (!path)
        abort ();
    char problem [512];
    if (chorus_flowdef_path_check (path, problem, sizeof problem)) {
        free (path);
        //  The loader's own message for a bad path, wherever it is
        if (!self->failed && self->error && self->error_size)
            snprintf (self->error, self->error_size, "%s", problem);
        self->failed = true;
        *self->offset = (size_t) (start - self->text);
        return -1;
    }
    chorus_cond_t *cond = self->cond;
    size_t index = json_array_size (cond->paths);
    json_array_append_new (cond->paths, json_string (path));
    free (path);
    if (index == cond->offsets_max) {
        cond->offsets_max = cond->offsets_max? cond->offsets_max * 2: 4;
        cond->offsets = realloc (cond->offsets, cond->offsets_max * sizeof (size_t));
        if (!cond->offsets)
            abort ();
    }
    cond->offsets [index] = (size_t) (start - self->text);
    node->path = json_string_value (json_array_get (cond->paths, index));
    self->at += length;
    return 0;
}

//  A string literal: "..." with \" and \\, or '...' as it is
static json_t *
s_string (s_parser_t *self)
{
    const char *start = self->at;
    char quote = *self->at++;
    size_t size = strlen (self->at);
    char *text = malloc (size + 1);
    if (!text)
        abort ();
    size_t length = 0;
    while (*self->at && *self->at != quote) {
        if (quote == '"' && *self->at == '\\') {
            if (self->at [1] != '"' && self->at [1] != '\\') {
                free (text);
                s_fail (self, self->at, "unknown escape '\\%c' in a string (only \\\" and \\\\)",
                        self->at [1]? self->at [1]: ' ');
                return NULL;
            }
            self->at++;
        }
        text [length++] = *self->at++;
    }
    if (!*self->at) {
        free (text);
        s_fail (self, start, "a string is not closed (no %c)", quote);
        return NULL;
    }
    self->at++;
    json_t *string = json_stringn (text, length);
    free (text);
    if (!string)
        s_fail (self, start, "a string is not valid UTF-8");
    return string;
}

//  A number as JSON writes it: -?digits[.digits][e[+-]digits]
static json_t *
s_number (s_parser_t *self)
{
    const char *start = self->at, *at = self->at;
    if (*at == '-')
        at++;
    size_t digits = strspn (at, "0123456789");
    bool real = false;
    at += digits;
    if (digits && *at == '.') {
        size_t fraction = strspn (at + 1, "0123456789");
        digits = fraction? digits: 0;
        at += 1 + fraction;
        real = true;
    }
    if (digits && (*at == 'e' || *at == 'E')) {
        at++;
        if (*at == '+' || *at == '-')
            at++;
        size_t exponent = strspn (at, "0123456789");
        digits = exponent? digits: 0;
        at += exponent;
        real = true;
    }
    if (!digits || s_word_char (*at)) {
        size_t length = 0;
        while (s_word_char (start [length]) && length < 32)
            length++;
        s_fail (self, start, "bad number '%.*s'", (int) (length? length: 1), start);
        return NULL;
    }
    self->at = at;
    char *text = strndup (start, (size_t) (at - start));
    if (!text)
        abort ();
    errno = 0;
    json_t *number = NULL;
    if (!real) {
        long long integer = strtoll (text, NULL, 10);
        if (errno == 0)
            number = json_integer (integer);
    }
    if (!number) {
        double value = strtod (text, NULL);
        if (isfinite (value))
            number = json_real (value);
    }
    if (!number)
        s_fail (self, start, "number '%s' is out of range", text);
    free (text);
    return number;
}

//  A literal, or NULL (with a problem reported when one was begun)
static json_t *
s_literal (s_parser_t *self)
{
    s_skip (self);
    char c = *self->at;
    if (c == '"' || c == '\'')
        return s_string (self);
    if (c == '-' || isdigit ((unsigned char) c))
        return s_number (self);
    if (s_keyword (self, "true"))
        return json_true ();
    if (s_keyword (self, "false"))
        return json_false ();
    if (s_keyword (self, "null"))
        return json_null ();
    return NULL;
}

//  operand = path / literal
static s_node_t *
s_operand (s_parser_t *self)
{
    s_skip (self);
    s_node_t *node = s_node_new (S_VALUE);
    if (self->at [0] == '$') {
        if (s_path (self, node) == 0)
            return node;
    }
    else
    if ((node->literal = s_literal (self)))
        return node;
    else
    if (!self->failed) {
        char token [64];
        s_fail (self, self->at, "expected a path, a string, a number, true, false, null, "
                "'not', 'exists' or '(' %s", s_token (self->at, token, sizeof token));
    }
    s_node_destroy (node);
    return NULL;
}

//  list = "[" [ literal *( "," literal ) ] "]"
static s_node_t *
s_list (s_parser_t *self)
{
    s_node_t *node = s_node_new (S_VALUE);
    node->literal = json_array ();
    s_skip (self);
    if (s_punct (self, "]"))
        return node;
    while (true) {
        s_skip (self);
        const char *start = self->at;
        json_t *item = s_literal (self);
        if (!item) {
            char token [64];
            if (*start == '$')
                s_fail (self, start, "a list holds literals only (strings, numbers, true, "
                        "false, null), not paths");
            else
                s_fail (self, start, "expected a literal in the list %s",
                        s_token (start, token, sizeof token));
            s_node_destroy (node);
            return NULL;
        }
        json_array_append_new (node->literal, item);
        if (s_punct (self, "]"))
            return node;
        if (!s_punct (self, ",")) {
            char token [64];
            s_fail (self, self->at, "expected ',' or ']' in the list %s",
                    s_token (self->at, token, sizeof token));
            s_node_destroy (node);
            return NULL;
        }
    }
}

static s_node_t *s_or (s_parser_t *self);

//  test = operand [ compare-op operand / "in" ( list / path ) ]
static s_node_t *
s_test (s_parser_t *self)
{
    s_skip (self);
    const char *start = self->at;
    s_node_t *left = s_operand (self);
    if (!left)
        return NULL;
    static const struct { const char *mark; s_op_t op; } ops [] = {
        { "==", S_EQ }, { "!=", S_NE }, { "<=", S_LE }, { ">=", S_GE }, { "<", S_LT },
        { ">", S_GT }
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops [0]; i++)
        if (s_punct (self, ops [i].mark)) {
            s_node_t *node = s_node_new (S_COMPARE);
            node->op = ops [i].op;
            node->left = left;
            s_skip (self);
            if (*self->at == '=' || *self->at == '<' || *self->at == '>') {
                char token [64];
                s_fail (self, self->at, "expected a value after '%s' %s", ops [i].mark,
                        s_token (self->at, token, sizeof token));
                s_node_destroy (node);
                return NULL;
            }
            node->right = s_operand (self);
            if (!node->right) {
                s_node_destroy (node);
                return NULL;
            }
            return node;
        }
    if (s_keyword (self, "in")) {
        s_node_t *node = s_node_new (S_IN);
        node->left = left;
        s_skip (self);
        if (s_punct (self, "["))
            node->right = s_list (self);
        else
        if (*self->at == '$') {
            node->right = s_node_new (S_VALUE);
            if (s_path (self, node->right)) {
                s_node_destroy (node);
                return NULL;
            }
        }
        else {
            char token [64];
            s_fail (self, self->at, "'in' needs a list ([...]) or a path %s",
                    s_token (self->at, token, sizeof token));
        }
        if (!node->right) {
            s_node_destroy (node);
            return NULL;
        }
        return node;
    }
    //  Alone, an operand is a condition only if it can be true or false
    if (left->literal && !json_is_boolean (left->literal)) {
        s_node_destroy (left);
        s_fail (self, start, "a literal alone is not a condition: compare it (==, !=, <, "
                "<=, >, >=, in)");
        return NULL;
    }
    return left;
}

//  not-expr = "not" not-expr / "(" condition ")" / "exists" path / test
static s_node_t *
s_not (s_parser_t *self)
{
    s_skip (self);
    const char *start = self->at;
    bool nests = (*start == '(' || s_keyword (self, "not"));
    if (nests) {
        self->at = start;
        if (++self->depth > CHORUS_COND_MAX_DEPTH) {
            s_fail (self, start, "nested deeper than %d levels", CHORUS_COND_MAX_DEPTH);
            return NULL;
        }
    }
    s_node_t *node = NULL;
    if (s_keyword (self, "not")) {
        s_node_t *operand = s_not (self);
        if (operand) {
            node = s_node_new (S_NOT);
            node->left = operand;
        }
    }
    else
    if (s_punct (self, "(")) {
        node = s_or (self);
        if (node && !s_punct (self, ")")) {
            char token [64];
            s_fail (self, self->at, "expected ')' %s", s_token (self->at, token, sizeof token));
            s_node_destroy (node);
            node = NULL;
        }
    }
    else
    if (s_keyword (self, "exists")) {
        s_skip (self);
        if (*self->at != '$') {
            char token [64];
            s_fail (self, self->at, "'exists' needs a path %s",
                    s_token (self->at, token, sizeof token));
        }
        else {
            node = s_node_new (S_EXISTS);
            node->left = s_node_new (S_VALUE);
            if (s_path (self, node->left)) {
                s_node_destroy (node);
                node = NULL;
            }
        }
    }
    else
        node = s_test (self);
    if (nests)
        self->depth--;
    return node;
}

//  and-expr = not-expr *( "and" not-expr ); or-expr likewise with "or"
static s_node_t *
s_binary (s_parser_t *self, const char *word, s_kind_t kind, s_node_t *(*next) (s_parser_t *))
{
    s_node_t *left = next (self);
    while (left && s_keyword (self, word)) {
        s_node_t *right = next (self);
        if (!right) {
            s_node_destroy (left);
            return NULL;
        }
        s_node_t *node = s_node_new (kind);
        node->left = left;
        node->right = right;
        left = node;
    }
    return left;
}

static s_node_t *
s_and (s_parser_t *self)
{
    return s_binary (self, "and", S_AND, s_not);
}

static s_node_t *
s_or (s_parser_t *self)
{
    return s_binary (self, "or", S_OR, s_and);
}

chorus_cond_t *
chorus_cond_parse (const char *text, size_t *offset, char *error, size_t error_size)
{
    assert (text);
    size_t ignored;
    s_parser_t parser = { .text = text, .at = text, .error = error, .error_size = error_size,
                          .offset = offset? offset: &ignored };
    *parser.offset = 0;
    if (error && error_size)
        *error = 0;
    chorus_cond_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->paths = json_array ();
    parser.cond = self;
    s_skip (&parser);
    if (!*parser.at)
        s_fail (&parser, parser.at, "the condition is empty");
    else {
        self->root = s_or (&parser);
        s_skip (&parser);
        if (self->root && *parser.at) {
            char token [64];
            s_fail (&parser, parser.at, "expected 'and', 'or' or the end %s",
                    s_token (parser.at, token, sizeof token));
        }
    }
    if (parser.failed || !self->root)
        chorus_cond_destroy (&self);
    return self;
}

size_t
chorus_cond_paths (chorus_cond_t *self)
{
    return json_array_size (self->paths);
}

const char *
chorus_cond_path (chorus_cond_t *self, size_t index, size_t *offset)
{
    if (index >= json_array_size (self->paths))
        return NULL;
    if (offset)
        *offset = self->offsets [index];
    return json_string_value (json_array_get (self->paths, index));
}

const json_t *
chorus_cond_path_list (chorus_cond_t *self)
{
    return self->paths;
}

//  --------------------------------------------------------------------------
//  Evaluation

//  The operand's value (borrowed); NULL when its path leads nowhere
static const json_t *
s_value (const s_node_t *node, const json_t *context)
{
    return node->literal? node->literal: chorus_flowdef_lookup (context, node->path);
}

//  -1, 0 or 1 when the values are comparable (two numbers, two strings),
//  else 2
static int
s_order (const json_t *a, const json_t *b)
{
    if (json_is_integer (a) && json_is_integer (b)) {
        json_int_t x = json_integer_value (a), y = json_integer_value (b);
        return x < y? -1: x > y;
    }
    if (json_is_number (a) && json_is_number (b)) {
        double x = json_number_value (a), y = json_number_value (b);
        return x < y? -1: x > y;
    }
    if (json_is_string (a) && json_is_string (b)) {
        size_t xs = json_string_length (a), ys = json_string_length (b);
        int rc = memcmp (json_string_value (a), json_string_value (b), xs < ys? xs: ys);
        return rc < 0? -1: rc > 0? 1: xs < ys? -1: xs > ys;
    }
    return 2;
}

//  Equal as FLOWS.md says: numbers by value, null and nothing alike, all
//  else as JSON (no conversion between types)
static bool
s_equal (const json_t *a, const json_t *b)
{
    bool a_null = !a || json_is_null (a), b_null = !b || json_is_null (b);
    if (a_null || b_null)
        return a_null && b_null;
    if (json_is_number (a) && json_is_number (b))
        return s_order (a, b) == 0;
    return json_equal ((json_t *) a, (json_t *) b);
}

static bool
s_eval (const s_node_t *node, const json_t *context)
{
    switch (node->kind) {
        case S_OR:
            return s_eval (node->left, context) || s_eval (node->right, context);
        case S_AND:
            return s_eval (node->left, context) && s_eval (node->right, context);
        case S_NOT:
            return !s_eval (node->left, context);
        case S_EXISTS: {
            const json_t *value = s_value (node->left, context);
            return value && !json_is_null (value);
        }
        case S_VALUE:
            return json_is_true (s_value (node, context));
        case S_IN: {
            const json_t *value = s_value (node->left, context);
            const json_t *list = s_value (node->right, context);
            size_t index;
            const json_t *item;
            if (json_is_array (list))
                json_array_foreach (list, index, item)
                    if (s_equal (value, item))
                        return true;
            return false;
        }
        case S_COMPARE: {
            const json_t *a = s_value (node->left, context);
            const json_t *b = s_value (node->right, context);
            if (node->op == S_EQ)
                return s_equal (a, b);
            if (node->op == S_NE)
                return !s_equal (a, b);
            int order = s_order (a, b);
            if (order == 2)
                return false;       //  not comparable: every order is false
            return node->op == S_LT? order < 0: node->op == S_LE? order <= 0
                 : node->op == S_GT? order > 0: order >= 0;
        }
    }
    return false;
}

bool
chorus_cond_eval (chorus_cond_t *self, const json_t *context)
{
    return self && self->root && s_eval (self->root, context);
}
