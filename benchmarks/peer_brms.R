# bench_peers.py's model fitted by brms, as an R user would (needs R with brms: Debian's
# r-cran-brms). Writes the minimum bulk ESS and maximum r_hat over the effects, cutpoints and
# org SD (posterior::summarise_draws) and the divergences to OUT.json.
#
#   Rscript benchmarks/peer_brms.R DATA.csv OUT.json [DRAWS [TUNE]]
suppressPackageStartupMessages(library(brms))

args <- commandArgs(trailingOnly = TRUE)
csv <- args[1]
out <- args[2]
draws <- if (length(args) >= 3) as.integer(args[3]) else 1000L
tune <- if (length(args) >= 4) as.integer(args[4]) else 1000L

data <- read.csv(csv, colClasses = c(org = "character"))
data$stars <- factor(data$stars, ordered = TRUE)
fit <- brm(stars ~ x1 + x2 + x3 + x4 + x5 + (1 | org), data = data, family = cumulative("logit"),
           chains = 4, cores = 2, iter = tune + draws, warmup = tune, seed = 1, refresh = 0)

draws_ <- posterior::subset_draws(posterior::as_draws_df(fit), variable = c("^b_", "^sd_org__"), regex = TRUE)
summary <- posterior::summarise_draws(draws_, "ess_bulk", "rhat")
divergences <- sum(subset(nuts_params(fit), Parameter == "divergent__")$Value)
cat(sprintf('{"min_ess_bulk": %f, "max_rhat": %f, "divergences": %d}\n',
            min(summary$ess_bulk), max(summary$rhat), as.integer(divergences)), file = out)
