# Databricks notebook source
dbutils.widgets.text("greeting", "hi")
dbutils.widgets.text("times", "1")

# COMMAND ----------

GREETING = dbutils.widgets.get("greeting")
TIMES = int(dbutils.widgets.get("times"))


def greet(name):
    return " ".join([f"{GREETING}, {name}"] * TIMES)


print("helper loaded with", GREETING)
