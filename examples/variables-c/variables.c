/*
 * variables: a WAGI guest configured through Spin variables.
 *
 * zerowatt hands a WAGI guest its component variables as environment variables named like Spin's
 * environment provider names them (`message` -> SPIN_VARIABLE_MESSAGE), next to the component's
 * `environment`; see docs/manifest.md. The manifest builds `message` from application variables by
 * templating and feeds a secret into `token`, which this guest uses without ever printing it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *message = getenv("SPIN_VARIABLE_MESSAGE");
    const char *token = getenv("SPIN_VARIABLE_TOKEN");
    const char *mode = getenv("MODE");
    printf("Content-Type: text/plain; charset=utf-8\n\n");
    printf("%s\n", message ? message : "(no message variable)");
    printf("mode: %s\n", mode ? mode : "(unset)");
    printf("token: %s (%zu characters, not shown)\n", token && *token ? "set" : "missing",
           token ? strlen(token) : (size_t)0);
    return 0;
}
