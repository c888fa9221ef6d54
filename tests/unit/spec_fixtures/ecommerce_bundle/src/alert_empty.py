# Databricks notebook source
print("alert_empty")
