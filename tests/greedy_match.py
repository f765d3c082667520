"""The tolerance rule for comparing greedy decodes across batch shapes; it lives in the
package (``workbench.devtools.greedy_match``) so the GPU check uses the very same rule."""
from workbench.devtools.greedy_match import (FLOAT32_TOL, HALF_OR_INT4_TOL,  # noqa: F401
                                             assert_greedy_match, assert_near_greedy,
                                             assert_row_near_greedy, logit_tolerance, penalised,
                                             prompt_ids, teacher_forced_logits)
